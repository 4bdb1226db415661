package fsyncfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fusectlDir is where the fusectl file system exposes one directory per FUSE
// connection, named by the kernel device number of the mount.
const fusectlDir = "/sys/fs/fuse/connections"

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	major, minor uint32
	mountpoint   string
	fstype       string
	source       string
}

// isFuse reports whether e is a FUSE mount ("fuse", "fuse.<name>", "fuseblk").
func (e mountEntry) isFuse() bool {
	return e.fstype == "fuse" || e.fstype == "fuseblk" || strings.HasPrefix(e.fstype, "fuse.")
}

// connID is the name of e's directory under /sys/fs/fuse/connections: the
// kernel's dev_t, major<<20 | minor.
func (e mountEntry) connID() uint64 { return uint64(e.major)<<20 | uint64(e.minor) }

func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if e, ok := parseMountinfoLine(sc.Text()); ok {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// parseMountinfoLine parses "id parent major:minor root mountpoint opts
// [optional...] - fstype source superopts".
func parseMountinfoLine(line string) (mountEntry, bool) {
	fields := strings.Fields(line)
	if len(fields) < 7 {
		return mountEntry{}, false
	}
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+2 >= len(fields) {
		return mountEntry{}, false
	}
	maj, min, ok := strings.Cut(fields[2], ":")
	if !ok {
		return mountEntry{}, false
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return mountEntry{}, false
	}
	return mountEntry{
		major:      uint32(ma),
		minor:      uint32(mi),
		mountpoint: unescapeMountinfo(fields[4]),
		fstype:     fields[sep+1],
		source:     unescapeMountinfo(fields[sep+2]),
	}, true
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space, etc.).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonical makes p absolute and resolves symlinks in its parent directory
// only: resolving the last element would stat the mount root, which hangs
// on a wedged FUSE mount.
func canonical(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	dir, base := filepath.Split(abs)
	if rdir, err := filepath.EvalSymlinks(dir); err == nil {
		dir = rdir
	}
	return filepath.Join(dir, base), nil
}

// fuseMountsAt returns the FUSE mounts stacked on mountpoint, bottom first.
func fuseMountsAt(mountpoint string) ([]mountEntry, error) {
	all, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	var out []mountEntry
	for _, e := range all {
		if e.mountpoint == mountpoint && e.isFuse() {
			out = append(out, e)
		}
	}
	return out, nil
}

// IsMounted reports whether anything is mounted on mountpoint, according to
// /proc/self/mountinfo. It never touches the mountpoint itself, so it is safe
// on a wedged FUSE mount.
func IsMounted(mountpoint string) (bool, error) {
	mp, err := canonical(mountpoint)
	if err != nil {
		return false, err
	}
	all, err := readMountinfo()
	if err != nil {
		return false, err
	}
	for _, e := range all {
		if e.mountpoint == mp {
			return true, nil
		}
	}
	return false, nil
}

// CleanStale frees FUSE mounts on mountpoint left behind by a process that
// crashed or hung while serving them: for each one it aborts the FUSE
// connection through fusectl (mounting fusectl on /sys/fs/fuse/connections for
// the moment if it is not mounted), which fails every pending
// and future request with ENOTCONN and so releases any process stuck waiting
// on the dead server, then detaches the mount lazily (umount -l). It reports
// whether it found anything to clean. It needs root. It only reads
// /proc/self/mountinfo and never touches the mountpoint itself, so it does not
// hang on a wedged mount.
//
// Call it before Mount on a fixed mountpoint (a previous run may have died
// there), and from an operator's clean-up command. Do not call it on a
// mountpoint that a live Mount in this or another process still serves: it
// would break that mount for its users.
func CleanStale(mountpoint string) (bool, error) {
	mp, err := canonical(mountpoint)
	if err != nil {
		return false, err
	}
	cleaned := false
	var errs []error
	for range 16 { // mounts may be stacked; take them off one by one
		stack, err := fuseMountsAt(mp)
		if err != nil {
			return cleaned, err
		}
		if len(stack) == 0 {
			return cleaned, errors.Join(errs...)
		}
		top := stack[len(stack)-1]
		if err := abortConn(top.connID()); err != nil {
			errs = append(errs, err)
		}
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			return cleaned, errors.Join(append(errs, fmt.Errorf("umount -l %s: %w", mp, err))...)
		}
		cleaned = true
	}
	return cleaned, errors.Join(append(errs, fmt.Errorf("still FUSE mounts on %s after 16 unmounts", mp))...)
}

// abortConn aborts the FUSE connection id through fusectl. A connection that
// no longer exists is not an error. If fusectl was not mounted, it mounts it
// for the write and unmounts it again, leaving no mount behind.
func abortConn(id uint64) error {
	mounted, err := ensureFusectl()
	if err != nil {
		return err
	}
	if mounted {
		defer unix.Unmount(fusectlDir, unix.MNT_DETACH)
	}
	p := filepath.Join(fusectlDir, strconv.FormatUint(id, 10), "abort")
	err = os.WriteFile(p, []byte("1"), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("aborting FUSE connection %d: %w", id, err)
	}
	return nil
}

// ensureFusectl mounts fusectl on /sys/fs/fuse/connections unless it is
// there already (mount -t fusectl none /sys/fs/fuse/connections); it reports
// whether it mounted it.
func ensureFusectl() (bool, error) {
	all, err := readMountinfo()
	if err != nil {
		return false, err
	}
	for _, e := range all {
		if e.mountpoint == fusectlDir && e.fstype == "fusectl" {
			return false, nil
		}
	}
	err = unix.Mount("none", fusectlDir, "fusectl", 0, "")
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return false, nil
		}
		return false, fmt.Errorf("mount -t fusectl none %s: %w", fusectlDir, err)
	}
	return true, nil
}

package fsyncfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Available reports whether a FUSE mount can work in this process: nil if
// so, otherwise an error whose text is the reason (for example "no /dev/fuse
// (...)"), meant to be reported as "skipped: <reason>". It checks that the
// system is Linux, that /dev/fuse exists and can be opened read-write, that the
// kernel knows the fuse file system type, and that the process may mount:
// root with CAP_SYS_ADMIN (mount(2) directly, as Mount does), or a
// fusermount3/fusermount binary in PATH. It does not mount anything, so a
// mount can still fail (for example under a seccomp or LSM policy); Mount
// returns that error.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("FUSE fsync delay is only supported on Linux, not %s", runtime.GOOS)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no /dev/fuse (FUSE is not loaded in this kernel or not exposed to this container)")
		}
		return fmt.Errorf("cannot stat /dev/fuse: %v", err)
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open /dev/fuse: %v", err)
	}
	_ = f.Close()
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && !hasFuseFS(string(b)) {
		return errors.New("kernel has no fuse file system type (not in /proc/filesystems)")
	}
	if os.Geteuid() == 0 && hasCapSysAdmin() {
		return nil
	}
	for _, bin := range []string{"fusermount3", "fusermount"} {
		if _, err := exec.LookPath(bin); err == nil {
			return nil
		}
	}
	if os.Geteuid() == 0 {
		return errors.New("running as root without CAP_SYS_ADMIN and no fusermount3/fusermount in PATH")
	}
	return errors.New("not root and no fusermount3/fusermount in PATH")
}

func hasFuseFS(procFilesystems string) bool {
	sc := bufio.NewScanner(strings.NewReader(procFilesystems))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == "fuse" {
			return true
		}
	}
	return false
}

// hasCapSysAdmin reads CapEff from /proc/self/status; if it cannot, it
// assumes yes (root usually has it, and Mount reports the real error).
func hasCapSysAdmin() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			if err != nil {
				return true
			}
			const capSysAdmin = 21
			return v&(1<<capSysAdmin) != 0
		}
	}
	return true
}

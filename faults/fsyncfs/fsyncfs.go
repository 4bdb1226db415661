package fsyncfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// closeGrace is how long Close waits, after a lazy unmount, for files still
// open on the mount to be closed before it aborts the FUSE connection.
var closeGrace = 5 * time.Second

// Stats counts what a Mount did since it was mounted.
type Stats struct {
	// Fsyncs is the number of FUSE FSYNC requests: fsync(2) and
	// fdatasync(2) on files.
	Fsyncs int64
	// DirFsyncs is the number of FUSE FSYNCDIR requests: fsync(2) on
	// directories.
	DirFsyncs int64
	// Delayed is how many of those requests were given a non-zero delay.
	Delayed int64
	// Injected is the sum of the delays drawn (what was asked for).
	Injected time.Duration
	// Slept is the wall time actually spent waiting: a little above
	// Injected (timer overshoot, about 0.1-0.2 ms per delay here), or below
	// it if Close cut waits short.
	Slept time.Duration
	// Backend is the total time spent in the real fsyncs of the backing
	// files and directories, after the delays.
	Backend time.Duration
}

// Mount is a running fsync-delaying passthrough mount. Its methods are safe
// for concurrent use.
type Mount struct {
	backing    string
	mountpoint string
	server     *fuse.Server
	served     chan struct{} // closed when the server's Serve returns
	closing    chan struct{} // closed by Close: wakes delayed fsyncs
	conn       uint64        // FUSE connection id (fusectl directory name)

	mu    sync.Mutex
	delay Delay
	rng   *sampler

	fsyncs, dirFsyncs, delayed atomic.Int64
	injected, slept, backend   atomic.Int64 // nanoseconds

	closeOnce sync.Once
	closeErr  error
}

// MountDir mounts a passthrough view of backingDir on mountpoint (both must be
// existing directories; mountpoint should be empty) and starts serving it.
// The delay starts off; set it with SetDelay. seed seeds the PCG generator
// that draws the jitter and probability decisions, so a run is reproducible.
//
// It mounts with mount(2) directly (go-fuse MountOptions.DirectMount), which
// works as root; otherwise go-fuse falls back to fusermount. Call Close when
// done, after the programs using the mount have closed their files.
func MountDir(backingDir, mountpoint string, seed uint64) (*Mount, error) {
	backing, err := filepath.Abs(backingDir)
	if err != nil {
		return nil, err
	}
	mp, err := canonical(mountpoint)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{backing, mp} {
		st, err := os.Stat(d)
		if errors.Is(err, syscall.ENOTCONN) {
			return nil, fmt.Errorf("fsyncfs: %w (a stale FUSE mount? see CleanStale)", err)
		}
		if err != nil {
			return nil, fmt.Errorf("fsyncfs: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("fsyncfs: %s is not a directory", d)
		}
	}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("fsyncfs: loopback root %s: %w", backing, err)
	}
	m := &Mount{
		backing:    backing,
		mountpoint: mp,
		served:     make(chan struct{}),
		closing:    make(chan struct{}),
		rng:        newSampler(seed),
	}
	rootNode := &node{LoopbackNode: root.(*fs.LoopbackNode), m: m}
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount: true,
			FsName:      backing,
			Name:        "fsyncfs",
			// Panics in FS handlers are recovered by go-fuse's default
			// PanicHandler (logged, the request fails with EIO), so a bug
			// here does not kill the serving process.
		},
	}
	server, err := fuse.NewServer(fs.NewNodeFS(rootNode, opts), mp, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("fsyncfs: mounting %s on %s: %w", backing, mp, err)
	}
	m.server = server
	go func() {
		defer close(m.served)
		server.Serve()
	}()
	if err := server.WaitMount(); err != nil {
		_ = server.Unmount()
		return nil, fmt.Errorf("fsyncfs: mounting %s on %s: %w", backing, mp, err)
	}
	if err := m.findConn(); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

// findConn records the FUSE connection id of the mount (the mount's device
// number, read from mountinfo), needed to abort it later.
func (m *Mount) findConn() error {
	stack, err := fuseMountsAt(m.mountpoint)
	if err != nil {
		return fmt.Errorf("fsyncfs: reading mountinfo: %w", err)
	}
	if len(stack) == 0 {
		return fmt.Errorf("fsyncfs: %s is not in /proc/self/mountinfo after mounting", m.mountpoint)
	}
	m.conn = stack[len(stack)-1].connID()
	return nil
}

// Mountpoint returns the directory where the mount is.
func (m *Mount) Mountpoint() string { return m.mountpoint }

// Backing returns the directory whose contents the mount shows.
func (m *Mount) Backing() string { return m.backing }

// SetDelay changes the delay applied to fsyncs that start from now on; the
// zero Delay turns the fault off. It returns an error, and changes nothing,
// if d is invalid (see Delay.Validate).
func (m *Mount) SetDelay(d Delay) error {
	if err := d.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
	return nil
}

// Delay returns the current delay.
func (m *Mount) Delay() Delay {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.delay
}

// Stats returns the counters so far.
func (m *Mount) Stats() Stats {
	return Stats{
		Fsyncs:    m.fsyncs.Load(),
		DirFsyncs: m.dirFsyncs.Load(),
		Delayed:   m.delayed.Load(),
		Injected:  time.Duration(m.injected.Load()),
		Slept:     time.Duration(m.slept.Load()),
		Backend:   time.Duration(m.backend.Load()),
	}
}

// inject counts one fsync and waits the drawn delay; Close ends the wait
// early.
//
// A signal to the calling thread makes the kernel send FUSE INTERRUPT, which
// go-fuse turns into a cancelled ctx. The wait ignores it on purpose: a real
// disk fsync cannot be interrupted, and failing it with EINTR would be a
// different fault (Go's os.File.Sync retries EINTR, so the fsync is counted
// and delayed twice, but etcd's fileutil.Fdatasync does not and treats the
// error as fatal). Go programs get such signals (async preemption), and the
// race detector made it visible.
func (m *Mount) inject(_ context.Context, dir bool) syscall.Errno {
	if dir {
		m.dirFsyncs.Add(1)
	} else {
		m.fsyncs.Add(1)
	}
	d := m.rng.next(m.Delay())
	if d <= 0 {
		return 0
	}
	m.delayed.Add(1)
	m.injected.Add(int64(d))
	start := time.Now()
	m.wait(start.Add(d))
	m.slept.Add(int64(time.Since(start)))
	return 0
}

// fineWait is the last part of a delay that wait sleeps with nanosleep(2) on
// the OS thread instead of a Go timer. The Go runtime rounds its timer waits
// to whole milliseconds (epoll_wait), which made delays come out 0.3-1 ms
// long; nanosleep overshoots by about 0.05 ms. It blocks one OS thread for at
// most fineWait per delayed fsync.
const fineWait = 2 * time.Millisecond

// wait sleeps until deadline: a Go timer (which Close cuts short) for all
// but the last fineWait, then nanosleep for the rest.
func (m *Mount) wait(deadline time.Time) {
	if coarse := time.Until(deadline) - fineWait; coarse > 0 {
		t := time.NewTimer(coarse)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.closing:
			return
		}
	}
	for {
		rest := time.Until(deadline)
		if rest <= 0 {
			return
		}
		ts := unix.NsecToTimespec(int64(rest))
		if err := unix.Nanosleep(&ts, nil); err != nil && err != unix.EINTR {
			return
		}
	}
}

// Close unmounts and waits for the server to stop; calling it again returns
// the first call's result. Close the programs that use the mount first
// (etcd.Close before Close).
//
// If the mount is busy (files still open on it) Close detaches it lazily
// (umount -l), waits up to 5 s for those files to be closed, then aborts the
// FUSE connection: the remaining open files then fail with ENOTCONN, and Close
// returns an error saying so. Delayed fsyncs in progress end at once.
func (m *Mount) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Mount) close() error {
	close(m.closing)
	if err := m.server.Unmount(); err == nil {
		<-m.served
		return nil
	}
	// Busy: detach now, let the open files drain, then abort.
	if err := m.detach(); err != nil {
		return err
	}
	select {
	case <-m.served:
		return nil
	case <-time.After(closeGrace):
	}
	abortErr := abortConn(m.conn)
	select {
	case <-m.served:
	case <-time.After(5 * time.Second):
		return errors.Join(fmt.Errorf("fsyncfs: %s: server still running after unmount and abort", m.mountpoint), abortErr)
	}
	return errors.Join(fmt.Errorf("fsyncfs: %s was busy for %v after a lazy unmount; aborted the FUSE connection (open files there now fail with ENOTCONN)", m.mountpoint, closeGrace), abortErr)
}

// detach lazily unmounts m, unless it is not mounted any more.
func (m *Mount) detach() error {
	err := unix.Unmount(m.mountpoint, unix.MNT_DETACH)
	if err == nil {
		return nil
	}
	if stack, e := fuseMountsAt(m.mountpoint); e == nil && len(stack) == 0 {
		return nil // already gone
	}
	if errors.Is(err, unix.EPERM) { // not root: mounted through fusermount
		for _, bin := range []string{"fusermount3", "fusermount"} {
			if p, e := exec.LookPath(bin); e == nil {
				if e := exec.Command(p, "-u", "-z", m.mountpoint).Run(); e == nil {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("fsyncfs: umount -l %s: %w", m.mountpoint, err)
}

// Abort aborts the mount's FUSE connection at once (through fusectl; needs
// root), without waiting for anything: every pending and future request fails
// with ENOTCONN, so nothing can hang on this mount any more. It is the
// emergency exit for a crash handler (for example a deferred recover in main
// before re-panicking); call Close afterwards to detach the mount and reap the
// server.
func (m *Mount) Abort() error { return abortConn(m.conn) }

// node is a loopback node whose files and directories delay fsync.
type node struct {
	*fs.LoopbackNode
	m *Mount
}

// node keeps every ability of *fs.LoopbackNode. It must not implement
// fs.NodeFsyncer: go-fuse would call that before the file handle's Fsync.
var (
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeStatxer        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeWrapChilder    = (*node)(nil)
)

// WrapChild makes every node the loopback creates (lookup, create, mkdir,
// ...) one of ours.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, m: n.m}
	}
	return ops
}

// Open wraps the loopback file handle.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	return n.m.wrapFile(fh), fuseFlags, errno
}

// Create wraps the loopback file handle.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return ch, n.m.wrapFile(fh), fuseFlags, errno
}

// Tmpfile (open with O_TMPFILE) wraps the loopback file handle.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Tmpfile(ctx, flags, mode, out)
	return ch, n.m.wrapFile(fh), fuseFlags, errno
}

// CopyFileRange unwraps the file handles: the loopback's CopyFileRange
// requires *fs.LoopbackFile itself and answers ENOTSUP to anything else.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return n.LoopbackNode.CopyFileRange(ctx, unwrapFile(fhIn), offIn, out, unwrapFile(fhOut), offOut, length, flags)
}

// OpendirHandle wraps the loopback directory handle so that FSYNCDIR is
// delayed too.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 || fh == nil {
		return fh, fuseFlags, errno
	}
	return &dirHandle{h: fh, m: n.m}, fuseFlags, 0
}

func (m *Mount) wrapFile(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return &file{LoopbackFile: lf, m: m}
	}
	return fh // nil on error; anything else is passed through unchanged
}

func unwrapFile(fh fs.FileHandle) fs.FileHandle {
	if f, ok := fh.(*file); ok {
		return f.LoopbackFile
	}
	return fh
}

// file embeds the concrete *fs.LoopbackFile, not the fs.FileHandle
// interface: go-fuse discovers a handle's abilities (Write, Allocate, Setlk,
// ...) by type assertion, and an interface-typed field would hide them all
// (etcd then fails "failed to create WAL ... operation not supported").
type file struct {
	*fs.LoopbackFile
	m *Mount
}

var (
	_ fs.FileReleaser        = (*file)(nil)
	_ fs.FileGetattrer       = (*file)(nil)
	_ fs.FileReader          = (*file)(nil)
	_ fs.FileWriter          = (*file)(nil)
	_ fs.FileGetlker         = (*file)(nil)
	_ fs.FileSetlker         = (*file)(nil)
	_ fs.FileSetlkwer        = (*file)(nil)
	_ fs.FileLseeker         = (*file)(nil)
	_ fs.FileFlusher         = (*file)(nil)
	_ fs.FileFsyncer         = (*file)(nil)
	_ fs.FileSetattrer       = (*file)(nil)
	_ fs.FileAllocater       = (*file)(nil)
	_ fs.FilePassthroughFder = (*file)(nil)
	_ fs.FileIoctler         = (*file)(nil)
)

// Fsync waits the drawn delay, then fsyncs the backing file. go-fuse routes
// both fsync(2) and fdatasync(2) here (flags bit 0 set for fdatasync); the
// loopback does a full fsync for both.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.m.inject(ctx, false); errno != 0 {
		return errno
	}
	t0 := time.Now()
	defer func() { f.m.backend.Add(int64(time.Since(t0))) }()
	return f.LoopbackFile.Fsync(ctx, flags)
}

// dirHandle wraps go-fuse's loopback directory stream, whose type is not
// exported, so it cannot be embedded: each directory ability the loopback
// stream has is forwarded explicitly (embedding the interface would hide
// them).
type dirHandle struct {
	h fs.FileHandle
	m *Mount
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
	_ fs.FileIoctler      = (*dirHandle)(nil)
)

// Readdirent forwards to the loopback stream.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.h.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, 0
}

// Seekdir forwards to the loopback stream.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.h.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

// Releasedir forwards to the loopback stream (closes its descriptor).
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.h.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

// Ioctl forwards to the loopback stream.
func (d *dirHandle) Ioctl(ctx context.Context, cmd uint32, arg uint64, input []byte, output []byte) (int32, syscall.Errno) {
	if i, ok := d.h.(fs.FileIoctler); ok {
		return i.Ioctl(ctx, cmd, arg, input, output)
	}
	return 0, syscall.ENOTTY
}

// Fsyncdir waits the drawn delay, then fsyncs the backing directory.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if errno := d.m.inject(ctx, true); errno != 0 {
		return errno
	}
	if s, ok := d.h.(fs.FileFsyncdirer); ok {
		t0 := time.Now()
		defer func() { d.m.backend.Add(int64(time.Since(t0))) }()
		return s.Fsyncdir(ctx, flags)
	}
	return syscall.ENOTSUP
}

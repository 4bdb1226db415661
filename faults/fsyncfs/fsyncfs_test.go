package fsyncfs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestFsyncDelay(t *testing.T) {
	m, backing, mnt := mountT(t, 1)
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// Every upper bound is relative to this run's own fsyncs without delay
	// (off), never a wall-clock number: on a loaded machine an undelayed
	// FUSE fsync took over 10 ms, and its backing fsync varies by as much.
	// A delayed fsync lasts at least the delay (sleeps are never early),
	// shows at least half of it over the undelayed median, and in the
	// median not much more than it: less than half of it again plus the
	// spread of the undelayed fsyncs, plus how late the machine wakes a
	// sleeper at that moment (after each delayed fsync the test sleeps the
	// delay itself: at load 6-10 a 20 ms delay took 20-140 ms, the server
	// sleeping 744 ms for 490 ms injected).
	const n = 7
	off := timeSyncs(t, f, n)
	t.Logf("delay off: median fsync %.2f ms %v", ms(median(off)), off)
	noise := slices.Max(off) - slices.Min(off)
	added := func(name string, k int, delay time.Duration) time.Duration {
		t.Helper()
		got, late := delayedSyncs(t, f, k, delay)
		d := median(got) - median(off)
		limit := delay + delay/2 + noise + late
		t.Logf("%s: median fsync %.2f ms, %.2f ms over the undelayed median %v; the test's own sleeps of %v overslept %.2f ms (median)", name, ms(median(got)), ms(d), got, delay, ms(late))
		if median(got) < delay || d < delay/2 || d >= limit {
			t.Errorf("%s: median fsync %v, %v over the undelayed one; want at least %v, and in [%v, %v) over it", name, median(got), d, delay, delay/2, limit)
		}
		return median(got)
	}

	base := 50 * time.Millisecond
	if err := m.SetDelay(Delay{Base: base}); err != nil {
		t.Fatal(err)
	}
	dOn := added("delay 50ms", n, base)

	// Changed at run time, on the same open file: less delay than before.
	if err := m.SetDelay(Delay{Base: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if dMid := added("delay 20ms", 5, 20*time.Millisecond); dMid >= dOn {
		t.Errorf("SetDelay(20ms) after 50ms: median fsync %v, not less than %v", dMid, dOn)
	}

	// fdatasync goes through the same FUSE FSYNC request.
	t0 := time.Now()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatalf("fdatasync: %v", err)
	}
	if d := time.Since(t0); d < 20*time.Millisecond {
		t.Errorf("fdatasync took %v, want >= 20ms", d)
	}

	// Directory fsync (FSYNCDIR) is delayed too.
	dir, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if err := dir.Sync(); err != nil {
		t.Fatalf("directory fsync: %v", err)
	}
	if d := time.Since(t0); d < 20*time.Millisecond {
		t.Errorf("directory fsync took %v, want >= 20ms", d)
	}
	dir.Close()

	st := m.Stats()
	t.Logf("stats: %+v", st)
	// n off + n at 50ms + 5 at 20ms + 1 fdatasync at 20ms; 1 directory
	// fsync at 20ms.
	want := Stats{
		Fsyncs:    n + n + 5 + 1,
		DirFsyncs: 1,
		Delayed:   n + 5 + 1 + 1,
		Injected:  n*base + 7*20*time.Millisecond,
	}
	if st.Fsyncs != want.Fsyncs || st.DirFsyncs != want.DirFsyncs || st.Delayed != want.Delayed || st.Injected != want.Injected {
		t.Errorf("Stats = %+v, want Fsyncs %d DirFsyncs %d Delayed %d Injected %v", st, want.Fsyncs, want.DirFsyncs, want.Delayed, want.Injected)
	}
	if st.Slept < st.Injected {
		t.Errorf("Slept %v < Injected %v", st.Slept, st.Injected)
	}

	// The data went through to the backing file.
	if err := m.SetDelay(Delay{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(backing, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != (n+n+5)*4096 {
		t.Errorf("backing file has %d bytes, want %d", len(got), (n+n+5)*4096)
	}
}

// TestPassthroughAbilities checks the operations etcd's WAL uses, which a
// wrapper that hides the loopback's abilities breaks (see the file type).
func TestPassthroughAbilities(t *testing.T) {
	m, backing, mnt := mountT(t, 2)
	if err := m.SetDelay(Delay{Base: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "wal.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mnt, "wal.tmp", "0.wal")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// etcd locks WAL files with OFD locks and preallocates them.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Errorf("OFD lock: %v", err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 64<<10); err != nil {
		t.Errorf("fallocate: %v", err)
	}
	if _, err := f.WriteAt([]byte("hello"), 100); err != nil {
		t.Errorf("write: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := os.Rename(filepath.Join(mnt, "wal.tmp"), filepath.Join(mnt, "wal")); err != nil {
		t.Errorf("rename dir: %v", err)
	}
	// Readdir and reopening work on the wrapped directory handle.
	ents, err := os.ReadDir(filepath.Join(mnt, "wal"))
	if err != nil || len(ents) != 1 || ents[0].Name() != "0.wal" {
		t.Errorf("ReadDir = %v, %v; want [0.wal]", ents, err)
	}
	b, err := os.ReadFile(filepath.Join(backing, "wal", "0.wal"))
	if err != nil || len(b) != 64<<10 || !bytes.Equal(b[100:105], []byte("hello")) {
		t.Errorf("backing file: len %d err %v", len(b), err)
	}
	// copy_file_range between two files on the mount.
	src, _ := os.Open(filepath.Join(mnt, "wal", "0.wal"))
	dst, _ := os.Create(filepath.Join(mnt, "copy"))
	if src != nil && dst != nil {
		off := int64(0)
		if _, err := unix.CopyFileRange(int(src.Fd()), &off, int(dst.Fd()), nil, 200, 0); err != nil {
			t.Errorf("copy_file_range: %v", err)
		}
		src.Close()
		dst.Close()
	}
	// The node must not be a NodeFsyncer, or go-fuse would bypass the file
	// handle's Fsync.
	if _, ok := any(&node{}).(fs.NodeFsyncer); ok {
		t.Error("node implements fs.NodeFsyncer")
	}
	if st := m.Stats(); st.Fsyncs != 1 {
		t.Errorf("Fsyncs = %d, want 1", st.Fsyncs)
	}
}

func TestCloseNoLeak(t *testing.T) {
	requireFUSE(t)
	before := goleak.IgnoreCurrent()
	root := t.TempDir()
	backing, mnt := filepath.Join(root, "b"), filepath.Join(root, "m")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	m, err := MountDir(backing, mnt, 3)
	if err != nil {
		t.Fatal(err)
	}
	if on, _ := IsMounted(mnt); !on {
		t.Fatal("not mounted after MountDir")
	}
	if err := m.SetDelay(Delay{Base: 2 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(mnt, "x"), os.O_RDWR, 0)
	f.Sync()
	f.Close()
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if inMountinfo(t, mnt) {
		t.Fatalf("%s still in /proc/self/mountinfo", mnt)
	}
	goleak.VerifyNone(t, before)
}

// TestCloseBusy: Close with a file still open on the mount detaches lazily,
// waits for the file to be closed, and aborts the connection if it is not.
func TestCloseBusy(t *testing.T) {
	requireFUSE(t)
	defer func(g time.Duration) { closeGrace = g }(closeGrace)
	closeGrace = 500 * time.Millisecond
	before := goleak.IgnoreCurrent()

	t.Run("released", func(t *testing.T) {
		m, _, mnt := mountT(t, 4)
		f, err := os.Create(filepath.Join(mnt, "held"))
		if err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(100 * time.Millisecond); f.Close() }()
		t0 := time.Now()
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		t.Logf("Close with a file released after 100ms took %v", time.Since(t0))
		if inMountinfo(t, mnt) {
			t.Errorf("still mounted")
		}
	})
	t.Run("held", func(t *testing.T) {
		root := t.TempDir()
		backing, mnt := filepath.Join(root, "b"), filepath.Join(root, "m")
		os.Mkdir(backing, 0o755)
		os.Mkdir(mnt, 0o755)
		m, err := MountDir(backing, mnt, 5)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(mnt, "held"))
		if err != nil {
			t.Fatal(err)
		}
		err = m.Close()
		if err == nil || !strings.Contains(err.Error(), "aborted") {
			t.Errorf("Close with a file held open = %v, want an abort error", err)
		}
		t.Logf("Close: %v", err)
		// Writes may still succeed (with FUSE passthrough the kernel
		// writes the backing file itself), but fsync needs the server.
		if err := f.Sync(); err == nil {
			t.Errorf("fsync after abort succeeded")
		} else {
			t.Logf("fsync after abort: %v", err)
		}
		f.Close() // must not hang
		if inMountinfo(t, mnt) {
			t.Errorf("still mounted")
		}
	})
	goleak.VerifyNone(t, before)
}

// TestCleanStale frees a mount whose server is gone: simulated by a mount
// that is aborted, the way a crashed process leaves it.
func TestCleanStale(t *testing.T) {
	requireFUSE(t)
	root := t.TempDir()
	backing, mnt := filepath.Join(root, "b"), filepath.Join(root, "m")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	if ok, err := CleanStale(mnt); ok || err != nil {
		t.Fatalf("CleanStale on a plain dir = %v, %v", ok, err)
	}
	m, err := MountDir(backing, mnt, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ok, err := CleanStale(mnt)
	if !ok || err != nil {
		t.Fatalf("CleanStale = %v, %v; want true, nil", ok, err)
	}
	if inMountinfo(t, mnt) {
		t.Fatal("still mounted after CleanStale")
	}
	if _, err := os.Stat(filepath.Join(mnt, "anything")); !os.IsNotExist(err) {
		t.Errorf("stat under cleaned mountpoint: %v, want not-exist", err)
	}
	select {
	case <-m.served:
	case <-time.After(5 * time.Second):
		t.Error("server still running after CleanStale aborted its connection")
	}
}

func inMountinfo(t testing.TB, mnt string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := canonical(mnt)
	for _, line := range strings.Split(string(b), "\n") {
		if e, ok := parseMountinfoLine(line); ok && e.mountpoint == mp {
			return true
		}
	}
	return false
}

func TestSamplingDeterministic(t *testing.T) {
	d := Delay{Base: time.Millisecond, Jitter: 10 * time.Millisecond, Probability: 0.3}
	draw := func(seed uint64, n int) []time.Duration {
		s := newSampler(seed)
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = s.next(d)
		}
		return out
	}
	a, b, c := draw(42, 2000), draw(42, 2000), draw(43, 2000)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different delays")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds gave the same delays")
	}
	delayed := 0
	for _, x := range a {
		if x == 0 {
			continue
		}
		delayed++
		if x < d.Base || x >= d.Base+d.Jitter {
			t.Fatalf("delay %v outside [%v, %v)", x, d.Base, d.Base+d.Jitter)
		}
	}
	if frac := float64(delayed) / float64(len(a)); frac < 0.25 || frac > 0.35 {
		t.Errorf("delayed fraction %.3f, want about 0.3", frac)
	}
	// Probability 0 means always; the zero Delay means never.
	s := newSampler(1)
	for range 100 {
		if got := s.next(Delay{Base: 5 * time.Millisecond}); got != 5*time.Millisecond {
			t.Fatalf("Delay{Base: 5ms} drew %v", got)
		}
		if got := s.next(Delay{}); got != 0 {
			t.Fatalf("zero Delay drew %v", got)
		}
	}
	for _, bad := range []Delay{{Base: -1}, {Jitter: -1}, {Probability: -0.1}, {Probability: 1.5}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}

	// Through real mounts: the same seed injects the same total.
	requireFUSE(t)
	total := func(seed uint64) time.Duration {
		m, _, mnt := mountT(t, seed)
		m.SetDelay(Delay{Jitter: 2 * time.Millisecond, Probability: 0.5})
		f, err := os.Create(filepath.Join(mnt, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		timeSyncs(t, f, 12)
		return m.Stats().Injected
	}
	if x, y := total(7), total(7); x != y {
		t.Errorf("seed 7 injected %v then %v", x, y)
	}
}

// TestConcurrentFsyncs: delays run in parallel, and a delayed fsync does not
// hold up other requests on the mount. Both against this run's own
// timings, not wall-clock numbers: the other requests finish before any
// delayed fsync does (held up, they would finish after), and k delayed
// fsyncs at once take less than one delayed fsync alone plus half of the
// k-1 delays that running them one after another would add.
func TestConcurrentFsyncs(t *testing.T) {
	m, _, mnt := mountT(t, 8)
	const k, delay = 8, 200 * time.Millisecond
	files := make([]*os.File, k)
	for i := range files {
		f, err := os.Create(filepath.Join(mnt, "c"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	if err := m.SetDelay(Delay{Base: delay}); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	if err := files[0].Sync(); err != nil {
		t.Fatal(err)
	}
	one := time.Since(t1)

	before := m.Stats().Delayed
	t0 := time.Now()
	done := make(chan error, k)
	for _, f := range files {
		go func() { done <- f.Sync() }()
	}
	// Once every fsync is in its delay (counted when its sleep starts).
	for m.Stats().Delayed < before+k {
		time.Sleep(time.Millisecond)
	}
	s0 := time.Now()
	if _, err := os.ReadDir(mnt); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	others := time.Since(s0)
	// Not held up by the delayed fsyncs: done while all of them still wait.
	if n := len(done); n > 0 {
		t.Errorf("readdir + create + write during delayed fsyncs took %v and finished after %d of the %d fsyncs: held up by them", others, n, k)
	}
	for range k {
		if err := <-done; err != nil {
			t.Errorf("fsync: %v", err)
		}
	}
	all := time.Since(t0)
	t.Logf("one delayed fsync %v; %d at once %v; other requests during them %v", one, k, all, others)
	if all < delay || all >= one+(k-1)*delay/2 {
		t.Errorf("%d concurrent fsyncs with %v delay took %v, want at least %v and under %v (one alone took %v; one after another would be about %v)", k, delay, all, delay, one+(k-1)*delay/2, one, one+(k-1)*delay)
	}
}

// TestAbort: after Abort, requests fail at once (an fsync sleeping in a
// delay returns too) and Close still cleans up.
func TestAbort(t *testing.T) {
	requireFUSE(t)
	before := goleak.IgnoreCurrent()
	root := t.TempDir()
	backing, mnt := filepath.Join(root, "b"), filepath.Join(root, "m")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	m, err := MountDir(backing, mnt, 9)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	m.SetDelay(Delay{Base: time.Hour})
	synced := make(chan error, 1)
	go func() { synced <- f.Sync() }()
	for m.Stats().Fsyncs == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := m.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	select {
	case err := <-synced:
		t.Logf("fsync in flight during Abort: %v", err)
		if err == nil {
			t.Error("fsync in flight during Abort succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Error("fsync still blocked 5 s after Abort")
	}
	f.Close()
	err = m.Close()
	t.Logf("Close after Abort: %v", err)
	if inMountinfo(t, mnt) {
		t.Error("still mounted")
	}
	goleak.VerifyNone(t, before)
}

func TestDelayString(t *testing.T) {
	for d, want := range map[Delay]string{
		{}:                    "off",
		{Base: time.Second}:   "1s",
		{Jitter: time.Second}: "0s+[0,1s)",
		{Base: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Probability: 0.7}: "10ms+[0,20ms) p=0.7",
	} {
		if got := d.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", d, got, want)
		}
	}
}

package fsyncfs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// requireFUSE skips the test, with the reason, where FUSE cannot work.
func requireFUSE(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip("skipped: " + err.Error())
	}
}

// mountT mounts a fresh backing dir on a fresh mountpoint; Close runs in
// Cleanup (before the temp dirs are removed) and must leave no mount.
func mountT(t testing.TB, seed uint64) (m *Mount, backing, mnt string) {
	t.Helper()
	requireFUSE(t)
	root := t.TempDir()
	backing, mnt = filepath.Join(root, "backing"), filepath.Join(root, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := MountDir(backing, mnt, seed)
	if err != nil {
		t.Fatalf("MountDir: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if on, err := IsMounted(mnt); err != nil || on {
			t.Errorf("%s still mounted after Close (err %v)", mnt, err)
		}
	})
	return m, backing, mnt
}

// timeSyncs writes a block to f and times f.Sync, n times.
func timeSyncs(t testing.TB, f *os.File, n int) []time.Duration {
	t.Helper()
	buf := make([]byte, 4096)
	out := make([]time.Duration, 0, n)
	for i := range n {
		buf[0] = byte(i)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}

// delayedSyncs is timeSyncs with a control: after each fsync the caller
// sleeps delay itself, and the median of how much those sleeps overran is
// returned too (the machine's wake-up latency at that moment, 0 at best).
func delayedSyncs(t testing.TB, f *os.File, n int, delay time.Duration) ([]time.Duration, time.Duration) {
	t.Helper()
	var out, late []time.Duration
	for range n {
		out = append(out, timeSyncs(t, f, 1)...)
		t0 := time.Now()
		time.Sleep(delay)
		late = append(late, time.Since(t0)-delay)
	}
	return out, max(median(late), 0)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

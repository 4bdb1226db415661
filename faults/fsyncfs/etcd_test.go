package fsyncfs

import (
	"context"
	"fmt"
	"github.com/driftlab/driftlab/internal/embedetcd"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/goleak"
)

// startEtcd starts a single-member embedded etcd on 127.0.0.1 with its data in
// dataDir and its WAL in walDir.
func startEtcd(t *testing.T, dataDir, walDir, logFile string) *embed.Etcd {
	t.Helper()
	e, _, err := embedetcd.Start(embedetcd.Options{Name: "fsyncfs-test", DataDir: dataDir, WALDir: walDir,
		LogFile: logFile, LogLevel: "error", ReadyTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	return e
}

// walFsync returns the sum (seconds) and count of etcd's
// etcd_disk_wal_fsync_duration_seconds histogram from the default registry.
func walFsync(t *testing.T) (sum float64, count uint64) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "etcd_disk_wal_fsync_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			count += m.GetHistogram().GetSampleCount()
		}
		return sum, count
	}
	t.Fatal("etcd_disk_wal_fsync_duration_seconds not in the default prometheus registry")
	return 0, 0
}

// TestEtcdWALFsyncDelay puts etcd's WAL on the mount and checks that the
// delay shows in Put latency and in etcd's own WAL fsync metric.
func TestEtcdWALFsyncDelay(t *testing.T) {
	requireFUSE(t)
	before := goleak.IgnoreCurrent()
	root := t.TempDir()
	backing, mnt := filepath.Join(root, "backing"), filepath.Join(root, "mnt")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	m, err := MountDir(backing, mnt, 11)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() { // panic-safe: etcd first (below), then the mount
		if !closed {
			m.Close()
		}
	}()
	// WalDir must be below the mountpoint: etcd creates <WalDir>.tmp and
	// renames it to WalDir.
	e := startEtcd(t, filepath.Join(root, "data"), filepath.Join(mnt, "wal"), filepath.Join(root, "etcd.log"))
	etcdClosed := false
	defer func() {
		if !etcdClosed {
			e.Close()
		}
	}()
	st := m.Stats()
	t.Logf("etcd start-up through the mount: %d fsyncs, %d directory fsyncs", st.Fsyncs, st.DirFsyncs)
	cli := v3client.New(e.Server)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	val := string(make([]byte, 256))
	puts := func(n int) []time.Duration {
		out := make([]time.Duration, 0, n)
		for i := range n {
			t0 := time.Now()
			if _, err := cli.Put(ctx, fmt.Sprintf("k%d", i), val); err != nil {
				t.Fatalf("put: %v", err)
			}
			out = append(out, time.Since(t0))
		}
		return out
	}
	puts(5) // warm up

	const n = 20
	s0, c0 := walFsync(t)
	base := puts(n)
	s1, c1 := walFsync(t)
	delay := 50 * time.Millisecond
	if err := m.SetDelay(Delay{Base: delay}); err != nil {
		t.Fatal(err)
	}
	st0 := m.Stats()
	slow := puts(n)
	s2, c2 := walFsync(t)
	st1 := m.Stats()
	m.SetDelay(Delay{})

	baseMean := (s1 - s0) / float64(c1-c0)
	slowMean := (s2 - s1) / float64(c2-c1)
	t.Logf("put median: %.2f ms without delay, %.2f ms with %v; difference %.2f ms", ms(median(base)), ms(median(slow)), delay, ms(median(slow)-median(base)))
	t.Logf("etcd_disk_wal_fsync_duration_seconds mean: %.2f ms over %d fsyncs without delay, %.2f ms over %d fsyncs with delay", baseMean*1e3, c1-c0, slowMean*1e3, c2-c1)
	t.Logf("mount stats during delayed phase: %d fsyncs, %d dir fsyncs, %d delayed, %v injected", st1.Fsyncs-st0.Fsyncs, st1.DirFsyncs-st0.DirFsyncs, st1.Delayed-st0.Delayed, st1.Injected-st0.Injected)

	if median(slow) < delay {
		t.Errorf("median put with delay = %v, want >= %v", median(slow), delay)
	}
	// Against this run's own undelayed puts, not a number (on a loaded
	// machine their median reached 11.7 ms): the delay must show in the
	// difference, with half of it as margin for the undelayed puts' noise.
	if median(slow)-median(base) < delay/2 {
		t.Errorf("delay added only %v to the median put (%v without, %v with)", median(slow)-median(base), median(base), median(slow))
	}
	if c2 == c1 || c1 == c0 {
		t.Fatalf("no WAL fsyncs recorded (counts %d, %d, %d)", c0, c1, c2)
	}
	// Every delayed WAL fsync lasts at least the delay, so etcd's own
	// delayed-phase mean must too: the delay as etcd measures it. The rise
	// over the undelayed mean is checked with half the delay as margin, as
	// the puts are: on a busy disk the undelayed mean itself reached 21 ms
	// (a few slow real fsyncs), which a 95%-of-the-delay rise cannot absorb.
	if slowMean < delay.Seconds() {
		t.Errorf("mean WAL fsync with delay %.2f ms, want >= %v", slowMean*1e3, delay)
	}
	if rise := slowMean - baseMean; rise < 0.5*delay.Seconds() {
		t.Errorf("mean WAL fsync rose by %.2f ms, want >= half of %v", rise*1e3, delay)
	}
	if st1.Fsyncs-st0.Fsyncs < n {
		t.Errorf("only %d fsyncs reached the mount for %d puts", st1.Fsyncs-st0.Fsyncs, n)
	}

	// Close etcd before unmounting, then check nothing is left.
	cli.Close()
	e.Close()
	etcdClosed = true
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	if inMountinfo(t, mnt) {
		t.Errorf("%s still mounted", mnt)
	}
	// No ignore list needed: with etcd 3.7.3 closed, nothing it started
	// is left running.
	goleak.VerifyNone(t, before)
}

package watchstorm

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/driftlab/driftlab/internal/etcdtest"
)

// probe measures put latency and watch-delivery latency (put → event seen by
// a synced watcher) over n puts, and returns their means: a put waits only
// when it meets the sync loop holding the store lock, so the mean, not the
// median, follows how long the lock is held.
func probe(t *testing.T, c *clientv3.Client, n int) (put, deliver time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := c.Watch(ctx, "/probe/", clientv3.WithPrefix())
	var puts, dels []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := c.Put(ctx, "/probe/k", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		puts = append(puts, time.Since(t0))
		select {
		case <-wch:
			dels = append(dels, time.Since(t0))
		case <-time.After(10 * time.Second):
			t.Fatal("watch event not delivered in 10s")
		}
	}
	return mean(puts), mean(dels)
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}

// storm runs a storm from startRev while probing, and returns the probe
// medians, the storm's stats and the highest slow-watcher gauge seen.
func storm(t *testing.T, endpoint string, c *clientv3.Client, startRev int64) (put, del time.Duration, st Stats, maxSlow int64) {
	t.Helper()
	s, err := Start(Config{Endpoints: []string{endpoint}, Clients: 8, Watchers: 16, SlowConsumers: 32, StartRev: startRev})
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if v, _, ok := etcdtest.Metric("etcd_debugging_mvcc_slow_watcher_total"); ok && int64(v) > peak.Load() {
				peak.Store(int64(v))
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the churn build up
	put, del = probe(t, c, 25)
	close(stop)
	<-done
	st = s.Stats()
	s.Stop()
	return put, del, st, peak.Load()
}

// TestChurnSlowsWritesAndWatches is the fault's effect: with a sustained
// churn of watchers re-created from an old revision, etcd reports slow
// watchers and both put latency and watch delivery latency rise, more so
// with more history to replay; after Stop they come back.
func TestChurnSlowsWritesAndWatches(t *testing.T) {
	if testing.Short() {
		t.Skip("loads an embedded etcd; skipped with -short")
	}
	e, c := etcdtest.Start(t, nil)
	endpoint := e.Clients[0].Addr().String()
	ctx := context.Background()
	start, err := Preload(ctx, c, 2000, 1024)
	if err != nil {
		t.Fatal(err)
	}
	basePut, baseDel := probe(t, c, 25)
	smallPut, smallDel, st, slow := storm(t, endpoint, c, start)
	if _, err := Preload(ctx, c, 8000, 1024); err != nil {
		t.Fatal(err)
	}
	bigPut, bigDel, _, _ := storm(t, endpoint, c, start)
	// Recovery is polled, not timed once: on a loaded 2-core CI machine etcd
	// was still draining the storm's victim watchers 300 ms after Stop
	// (after x6.8, down from x65 during the storm), and was back a little
	// later. Give it up to recoverWithin.
	const recoverWithin = 10 * time.Second
	var afterPut, afterDel time.Duration
	recoverStart := time.Now()
	for {
		time.Sleep(300 * time.Millisecond)
		afterPut, afterDel = probe(t, c, 25)
		if recovered(afterPut, afterDel, basePut, baseDel) || time.Since(recoverStart) > recoverWithin {
			break
		}
	}
	t.Logf("last probe %s after Stop", time.Since(recoverStart).Round(time.Millisecond))

	t.Logf("put mean: base %s, storm over 2k revisions %s (x%.1f), over 10k %s (x%.1f), after %s",
		basePut, smallPut, ratio(smallPut, basePut), bigPut, ratio(bigPut, basePut), afterPut)
	t.Logf("watch delivery mean: base %s, storm over 2k %s (x%.1f), over 10k %s (x%.1f), after %s",
		baseDel, smallDel, ratio(smallDel, baseDel), bigDel, ratio(bigDel, baseDel), afterDel)
	t.Logf("rewatches %d, slow consumers %d, max etcd_debugging_mvcc_slow_watcher_total %d", st.Rewatches, st.SlowConsumers, slow)

	if slow == 0 {
		t.Error("etcd_debugging_mvcc_slow_watcher_total never rose above 0 during the storm")
	}
	if st.Rewatches == 0 {
		t.Error("no watcher was re-created: there was no churn")
	}
	// Either storm must slow etcd: which one bites hardest varies from run
	// to run (see below; once in CI the 2k storm measured x0.8 while the 10k
	// one measured x110).
	putX := max(ratio(smallPut, basePut), ratio(bigPut, basePut))
	delX := max(ratio(smallDel, baseDel), ratio(bigDel, baseDel))
	if putX < 2 || delX < 2 {
		t.Errorf("neither storm slowed etcd: put x%.1f, delivery x%.1f at most (want >= 2)", putX, delX)
	}
	// More history usually makes the storm worse (x3-x4 in most runs here),
	// but not always within a storm this short: one run in four measured
	// the 10k storm lighter, when its watchers turned into victims served
	// by the victim loop instead of the sync loop. So it is reported, not
	// asserted.
	t.Logf("10k history vs 2k: put mean x%.2f", ratio(bigPut, smallPut))
	if !recovered(afterPut, afterDel, basePut, baseDel) {
		t.Errorf("etcd did not recover within %s of Stop: put %s vs %s, delivery %s vs %s", recoverWithin, afterPut, basePut, afterDel, baseDel)
	}
}

// recovered reports whether put and delivery means are back within x3 of the
// baseline measured before any storm.
func recovered(put, del, basePut, baseDel time.Duration) bool {
	return ratio(put, basePut) <= 3 && ratio(del, baseDel) <= 3
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		b = time.Microsecond
	}
	return float64(a) / float64(b)
}

package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
)

// planeHistory is 20 s of samples, a fault window over [5 s, 10 s], and
// what happened inside and outside it.
func planeHistory() []history.Record {
	recs := []history.Record{{T: 0, Source: history.SourceHarness, Kind: history.KindWorkloadStart}}
	var terminated, fsyncs, fsyncSum, le10ms, le100ms float64
	for s := 0; s <= 20; s++ {
		t := time.Duration(s) * time.Second
		in := s >= 5 && s <= 10
		m := map[string]float64{"etcd_slow_watchers": 0, "etcd_pending_events": 1, "watch_cache_lag": 2, "etcd_current_revision": float64(100 + s)}
		if in {
			m["etcd_slow_watchers"], m["etcd_pending_events"], m["watch_cache_lag"] = 3, 50, float64(10*s)
		}
		if s == 7 {
			terminated += 2 // two watchers terminated between 6 s and 7 s
		}
		if s == 16 {
			terminated++ // one outside
		}
		if s > 0 {
			// 10 fsyncs a second: outside 5 ms each, in the window 90 ms
			// (one of them 500 ms in each second of it).
			fsyncs += 10
			if s > 5 && s <= 10 {
				fsyncSum += 9*0.09 + 0.5
				le100ms += 9
			} else {
				fsyncSum += 10 * 0.005
				le10ms += 10
				le100ms += 10
			}
		}
		m["apiserver_terminated_watchers"] = terminated
		m["wal_fsync_count"], m["wal_fsync_sum"] = fsyncs, fsyncSum
		m["wal_fsync_le:0.01"], m["wal_fsync_le:0.1"], m["wal_fsync_le:1"], m["wal_fsync_le:+Inf"] = le10ms, le100ms, fsyncs, fsyncs
		recs = append(recs, history.Record{T: t, Source: history.SourceHarness, Kind: history.KindPlaneSample, Metrics: m})
		switch s {
		case 7:
			recs = append(recs,
				history.Record{T: t + 100*time.Millisecond, Source: history.SourceOperator, Kind: history.KindWatchEnd, Op: "connection-lost"},
				history.Record{T: t + 200*time.Millisecond, Source: history.SourceOperator, Kind: history.KindWatchEnd, Op: "connection-lost"},
				history.Record{T: t + 900*time.Millisecond, Source: history.SourceOperator, Kind: history.KindRelist, Op: "list"})
		case 15:
			recs = append(recs, history.Record{T: t, Source: history.SourceOperator, Kind: history.KindWatchEnd, Op: "timeout"})
		case 18:
			recs = append(recs, history.Record{T: t, Source: history.SourceHarness, Kind: history.KindConverged})
		}
	}
	// After convergence: the operator's shutdown is not counted.
	recs = append(recs, history.Record{T: 21 * time.Second, Source: history.SourceOperator, Kind: history.KindWatchEnd, Op: "stopped"})
	return recs
}

func TestPlaneAggregates(t *testing.T) {
	s := &Summary{Faults: []FaultResult{
		{Index: 0, Type: "network-retransmit", Window: &invariant.WindowLatency{StartMs: 5000, EndMs: 10000}},
		{Index: 1, Type: "wal-fsync-delay", Skipped: "no FUSE"},
	}}
	SetPlane(s, planeHistory())
	in, out := s.Faults[0].Plane, s.PlaneOutside
	if in == nil || out == nil || s.Faults[1].Plane != nil {
		t.Fatalf("plane stats: window %+v, outside %+v, skipped fault %+v", in, out, s.Faults[1].Plane)
	}
	if in.Samples != 6 || in.Seconds != 5 || out.Samples != 13 || out.Seconds != 13 {
		t.Errorf("samples: window %d over %gs, outside %d over %gs; want 6 over 5 s and 13 over 13 s (0-4, 11-18)", in.Samples, in.Seconds, out.Samples, out.Seconds)
	}
	if in.SlowWatchersPeak != 3 || in.PendingEventsPeak != 50 || in.WatchCacheLagPeak != 100 || in.WatchCacheLagMean != 75 {
		t.Errorf("window gauges %+v", in)
	}
	if out.SlowWatchersPeak != 0 || out.PendingEventsPeak != 1 || out.WatchCacheLagPeak != 2 {
		t.Errorf("outside gauges %+v", out)
	}
	if in.TerminatedWatchers != 2 || out.TerminatedWatchers != 1 {
		t.Errorf("terminated watchers: window %g, outside %g; want 2 and 1", in.TerminatedWatchers, out.TerminatedWatchers)
	}
	if in.Fsyncs != 50 || math.Abs(in.FsyncMeanMs-(9*90+500)/10.0) > 1e-6 {
		t.Errorf("window fsyncs %g mean %gms, want 50 at 131ms", in.Fsyncs, in.FsyncMeanMs)
	}
	// 10% of the window's fsyncs are in the 0.1..1 s bucket: the p99 is
	// 90% of the way through it.
	if math.Abs(in.FsyncP99Ms-910) > 1e-6 {
		t.Errorf("window fsync p99 %gms, want 910", in.FsyncP99Ms)
	}
	if math.Abs(out.FsyncMeanMs-5) > 1e-6 || out.FsyncP99Ms > 10 {
		t.Errorf("outside fsync mean %gms p99 %gms", out.FsyncMeanMs, out.FsyncP99Ms)
	}
	if in.WatchEnds["connection-lost"] != 2 || in.Relists != 1 || out.WatchEnds["timeout"] != 1 || out.WatchEnds["stopped"] != 0 || out.Relists != 0 {
		t.Errorf("operator: window %v/%d, outside %v/%d", in.WatchEnds, in.Relists, out.WatchEnds, out.Relists)
	}
	var b bytes.Buffer
	s.Print(&b)
	for _, want := range []string{"plane: etcd slow watchers peak 3", "terminated watchers 2", "operator relists 1, watch ends: connection-lost 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the text summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPlaneWithoutSamples(t *testing.T) {
	s := &Summary{Faults: []FaultResult{{Window: &invariant.WindowLatency{StartMs: 0, EndMs: 1000}}}}
	SetPlane(s, []history.Record{{Kind: history.KindWorkloadStart}})
	if s.PlaneOutside != nil || s.Faults[0].Plane != nil {
		t.Fatal("plane stats without samples")
	}
}

func TestBucketQuantile(t *testing.T) {
	cum := map[float64]float64{0.001: 0, 0.002: 50, 0.004: 100, math.Inf(1): 100}
	for _, c := range []struct{ q, want float64 }{{0.5, 0.002}, {0.25, 0.0015}, {0.99, 0.00396}, {1, 0.004}} {
		if got := bucketQuantile(c.q, cum); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%.2f = %g, want %g", c.q, got, c.want)
		}
	}
	if got := bucketQuantile(0.99, map[float64]float64{0.1: 1, math.Inf(1): 10}); got != 0.1 {
		t.Errorf("in the +Inf bucket: %g, want the highest finite bound", got)
	}
}

// Without control-plane samples (the virtual backend) the plane line is the
// operator's watches alone: no etcd or apiserver figures it did not measure.
func TestPlaneLineWithoutSamples(t *testing.T) {
	got := planeLine(&PlaneStats{Seconds: 240, Relists: 2, WatchEnds: map[string]int{"connection-lost": 2}})
	if got != "operator relists 2, watch ends: connection-lost 2" {
		t.Errorf("plane line %q", got)
	}
	if got := planeLine(&PlaneStats{Samples: 3, Seconds: 3}); !strings.Contains(got, "etcd slow watchers peak 0") || !strings.Contains(got, "[3 samples, 3s]") {
		t.Errorf("with samples: %q", got)
	}
}

package invariant

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
)

const cl = "default/kv-0"

func ms_(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func spec(t int, gen int64, replicas int32) history.Record {
	return history.Record{T: ms_(t), Source: history.SourceTruth, Kind: kindClusterSpec, Cluster: cl, Generation: gen, Replicas: history.Int32(replicas)}
}

func status(t int, ready int32, gen int64, cond string) history.Record {
	return history.Record{T: ms_(t), Source: history.SourceTruth, Kind: kindClusterStatus, Cluster: cl, Ready: history.Int32(ready), ObservedGeneration: gen, Condition: cond}
}

func pod(t int, kind, name string) history.Record {
	return history.Record{T: ms_(t), Source: history.SourceTruth, Kind: kind, Cluster: cl, Pod: "default/" + name}
}

func phase(t int, kind string) history.Record {
	return history.Record{T: ms_(t), Source: history.SourceHarness, Kind: kind}
}

func invariants() scenarios.Invariants {
	return scenarios.Invariants{
		Drift:   scenarios.Drift{ConvergeWithin: scenarios.Duration{Duration: time.Second}, Staleness: scenarios.Duration{Duration: 500 * time.Millisecond}},
		Latency: scenarios.Latency{P99: scenarios.Duration{Duration: 200 * time.Millisecond}},
	}
}

// healthy: two pods become ready, the operator reflects each within 50 ms.
func healthy() []history.Record {
	return []history.Record{
		phase(0, history.KindWorkloadStart),
		spec(1, 1, 2),
		status(5, 0, 1, "False"),
		pod(10, history.KindPodCreated, "kv-0-0"),
		pod(11, history.KindPodCreated, "kv-0-1"),
		pod(100, history.KindPodReady, "kv-0-0"),
		status(140, 1, 1, "False"),
		pod(200, history.KindPodReady, "kv-0-1"),
		status(250, 2, 1, "True"),
		phase(1000, history.KindWorkloadEnd),
		phase(1200, history.KindRunEnd),
	}
}

func result(t *testing.T, o *Outcome, name string) Result {
	t.Helper()
	for _, r := range o.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result %q", name)
	return Result{}
}

func TestHealthyHistoryPasses(t *testing.T) {
	o := Check(kv(healthy()), invariants())
	if !o.Passed() {
		t.Fatalf("healthy history failed: %+v", o.Results)
	}
	if o.Latency.Count != 2 || o.Latency.Max < 49 || o.Latency.Max > 51 || o.Latency.P50 < 39 || o.Latency.P50 > 41 {
		t.Fatalf("latency %+v, want 2 samples of 40ms and 50ms", o.Latency)
	}
}

func TestFrozenStatusFailsConvergence(t *testing.T) {
	h := healthy()
	// Drop the last status write: status stays at 1 of 2.
	var recs []history.Record
	for _, r := range h {
		if !(r.Kind == kindClusterStatus && r.T == ms_(250)) {
			recs = append(recs, r)
		}
	}
	o := Check(kv(recs), invariants())
	conv := result(t, o, DriftConvergence)
	if conv.Passed || !strings.Contains(conv.Detail, "status.readyReplicas is 1, but the truth (Ready Pods) is 2") {
		t.Fatalf("convergence should fail naming the drift: %+v", conv)
	}
	lat := result(t, o, LatencySLO)
	if lat.Passed || o.Latency.Unresolved != 1 {
		t.Fatalf("latency should fail with one unresolved sample: %+v %+v", lat, o.Latency)
	}
}

func TestLateConvergenceFails(t *testing.T) {
	h := healthy()
	for i := range h {
		if h[i].Kind == kindClusterStatus && h[i].T == ms_(250) {
			h[i].T = ms_(2500) // 1.5 s after the workload ended; limit 1 s
		}
	}
	h = append(h, phase(3000, history.KindRunEnd))
	conv := result(t, Check(kv(h), invariants()), DriftConvergence)
	if conv.Passed || !strings.Contains(conv.Detail, "converged 1.500s after") {
		t.Fatalf("late convergence should fail: %+v", conv)
	}
}

func TestStaleClaimFails(t *testing.T) {
	h := healthy()
	// A write at 900 ms claiming 1 ready: the count has been 2 since 200 ms,
	// more than the 500 ms staleness bound before.
	h = append(h, status(900, 1, 1, "False"), status(950, 2, 1, "True"))
	st := result(t, Check(kv(h), invariants()), DriftStaleness)
	if st.Passed || !strings.Contains(st.Detail, "reported readyReplicas=1, truths in the 500ms before were [2]") {
		t.Fatalf("stale claim should fail: %+v", st)
	}
	// Within the bound it is allowed: at 600 ms the count 1 was true until 200 ms, outside;
	// at 650 ms with a 500 ms bound the window starts at 150 ms, where it was 1.
	h2 := append(healthy(), status(650, 1, 1, "False"), status(700, 2, 1, "True"))
	if st := result(t, Check(kv(h2), invariants()), DriftStaleness); !st.Passed {
		t.Fatalf("claim within the bound should pass: %+v", st)
	}
}

func TestSlowStatusFailsLatencySLO(t *testing.T) {
	h := healthy()
	for i := range h {
		if h[i].Kind == kindClusterStatus && h[i].T == ms_(250) {
			h[i].T = ms_(600) // 400 ms after the Pod became Ready; SLO 200 ms
		}
	}
	o := Check(kv(h), invariants())
	lat := result(t, o, LatencySLO)
	if lat.Passed || !strings.Contains(lat.Detail, "p99") {
		t.Fatalf("latency should fail its p99: %+v (%+v)", lat, o.Latency)
	}
	if !result(t, o, DriftConvergence).Passed {
		t.Fatal("slow but correct status must still converge")
	}
}

func TestRunEndingBeforeWorkloadFails(t *testing.T) {
	h := healthy()
	var recs []history.Record
	for _, r := range h {
		if r.Kind != history.KindWorkloadEnd {
			recs = append(recs, r)
		}
	}
	if conv := result(t, Check(kv(recs), invariants()), DriftConvergence); conv.Passed {
		t.Fatal("a run without workload end must not pass convergence")
	}
}

func TestDeletedClusterAbandonsSamples(t *testing.T) {
	h := healthy()[:6] // up to the first pod-ready, no status yet
	h = append(h, history.Record{T: ms_(120), Source: history.SourceTruth, Kind: kindClusterDeleted, Cluster: cl},
		phase(1000, history.KindWorkloadEnd), phase(1100, history.KindRunEnd))
	o := Check(kv(h), invariants())
	if o.Latency.Abandoned != 1 || o.Latency.Unresolved != 0 {
		t.Fatalf("want 1 abandoned, 0 unresolved: %+v", o.Latency)
	}
	if !result(t, o, DriftConvergence).Passed {
		t.Fatal("a deleted cluster needs no status")
	}
}

func TestTruthConverged(t *testing.T) {
	tr := NewTruth()
	for _, r := range kv(healthy()) {
		tr.Apply(r)
	}
	if ok, why := tr.Converged(); !ok {
		t.Fatalf("not converged: %s", why)
	}
	for _, r := range kv(append(healthy(), pod(300, history.KindPodUnready, "kv-0-1"))) {
		if r.T == ms_(300) {
			tr.Apply(r)
		}
	}
	if ok, _ := tr.Converged(); ok {
		t.Fatal("converged although a pod went unready")
	}
}

// A member the kubelet makes Ready after the convergence deadline restarts
// the clock: reflected promptly it passes, never reflected it fails.
func TestLateTruthChangeRestartsConvergenceClock(t *testing.T) {
	base := []history.Record{
		phase(0, history.KindWorkloadStart),
		spec(1, 1, 2),
		pod(10, history.KindPodCreated, "kv-0-0"),
		pod(11, history.KindPodCreated, "kv-0-1"),
		pod(100, history.KindPodReady, "kv-0-0"),
		status(140, 1, 1, "False"),
		phase(1000, history.KindWorkloadEnd),
		// The deadline is 2000; the second member becomes Ready at 2500.
		pod(2500, history.KindPodReady, "kv-0-1"),
	}
	prompt := append(append([]history.Record(nil), base...), status(2550, 2, 1, "True"), phase(3000, history.KindRunEnd))
	if r := result(t, Check(kv(prompt), invariants()), DriftConvergence); !r.Passed {
		t.Fatalf("a late Ready reflected in 50 ms failed convergence: %s", r.Detail)
	}
	never := append(append([]history.Record(nil), base...), phase(3000, history.KindRunEnd))
	if r := result(t, Check(kv(never), invariants()), DriftConvergence); r.Passed {
		t.Fatalf("a late Ready never reflected passed convergence: %s", r.Detail)
	}
	slow := append(append([]history.Record(nil), base...), status(3600, 2, 1, "True"), phase(4000, history.KindRunEnd))
	if r := result(t, Check(kv(slow), invariants()), DriftConvergence); r.Passed {
		t.Fatalf("a late Ready reflected 1.1s later (limit 1s) passed convergence: %s", r.Detail)
	}
}

// TestOutsideWithoutWindowsMatchesHistogram: with no fault window, Check's
// outside-window statistics are what a histogram of every sample gives
// (splitByWindows with no window), for sorted and unsorted input, with
// resolved and unresolved samples.
func TestOutsideWithoutWindowsMatchesHistogram(t *testing.T) {
	slow := healthy()
	for i := range slow {
		if slow[i].Kind == kindClusterStatus && slow[i].T == ms_(250) {
			slow[i].T = ms_(600)
		}
	}
	unresolved := append(healthy(), pod(700, history.KindPodCreated, "default/kv-0-9"), pod(800, history.KindPodReady, "default/kv-0-9"))
	reversed := healthy()
	slices.Reverse(reversed)
	for name, h := range map[string][]history.Record{"healthy": healthy(), "slow": slow, "unresolved": unresolved, "reversed": reversed} {
		o := Check(kv(h), invariants())
		var samples []sample
		for _, s := range o.Samples {
			samples = append(samples, sample{from: s.ChangedAt, to: s.ReflectedAt, unresolved: s.Unresolved})
		}
		ws, want := splitByWindows(samples, nil)
		if o.Outside != want || len(o.Windows) != 0 || o.Windows == nil || len(ws) != 0 {
			t.Fatalf("%s: outside %+v windows %v, want %+v and an empty list", name, o.Outside, o.Windows, want)
		}
		if o.Outside.Count == 0 {
			t.Fatalf("%s: no samples: the test checks nothing", name)
		}
	}
	if o := Check(kv(unresolved), invariants()); o.Outside.Unresolved != 1 {
		t.Fatalf("want one unresolved sample outside: %+v", o.Outside)
	}
}

// TestDriftSplitsByWindow: in the healthy history the status is out of
// sync for [1,5) (no status yet), [100,140) and [200,250) ms; a fault
// window over [150,300) holds the last interval and the rest is outside.
func TestDriftSplitsByWindow(t *testing.T) {
	h := healthy()
	h = append(h[:7:7], append([]history.Record{
		{T: ms_(150), Source: history.SourceHarness, Kind: history.KindFaultStart, Op: "wal-fsync-delay", Detail: "0"},
	}, h[7:]...)...)
	h = append(h[:10:10], append([]history.Record{
		{T: ms_(300), Source: history.SourceHarness, Kind: history.KindFaultStop, Op: "wal-fsync-delay", Detail: "0"},
	}, h[10:]...)...)
	o := Check(kv(h), invariants())
	near := func(got, want float64) bool { return got > want-1e-9 && got < want+1e-9 }
	if d := o.Drift; !near(d.ObjectMs, 94) || !near(d.SpanMs, 999) || !near(d.LongestMs, 50) || !near(d.MeanObjects, 94.0/999) {
		t.Errorf("whole-run drift %+v, want 94 cluster-ms over 999 ms, longest 50", d)
	}
	if len(o.Windows) != 1 {
		t.Fatalf("windows %+v", o.Windows)
	}
	if d := o.Windows[0].Drift; !near(d.ObjectMs, 50) || !near(d.SpanMs, 150) || !near(d.LongestMs, 50) {
		t.Errorf("window drift %+v, want 50 cluster-ms over 150 ms", d)
	}
	if d := o.OutsideDrift; !near(d.ObjectMs, 44) || !near(d.SpanMs, 849) || !near(d.LongestMs, 40) {
		t.Errorf("outside drift %+v, want 44 cluster-ms over 849 ms, longest 40", d)
	}
	// A status that never catches up drifts to the end of the run.
	o = Check(kv(slices.Delete(healthy(), 8, 9)), invariants())
	if d := o.Drift; !near(d.ObjectMs, 4+40+800) || !near(d.LongestMs, 1000) {
		t.Errorf("frozen status drift %+v, want 844 cluster-ms within the workload, longest 1000 (to run end)", d)
	}
}

// TestInSyncAgreesWithExplanation: the replay's inSync is InSync's
// verdict, and a missing reported value equals only a null truth.
func TestInSyncAgreesWithExplanation(t *testing.T) {
	vals := []string{"", "null", "1", "2", `"True"`}
	for mask := range 125 {
		tr := NewTruth()
		tr.Apply(history.Record{Kind: history.KindSubject, Subject: referenceSubject})
		o := tr.object("ns/a")
		o.Truth[0], o.Reported[0] = vals[mask%5], vals[mask/5%5]
		if o.Truth[0] == "" {
			o.Truth[0] = "null"
		}
		o.Truth[1], o.Reported[1] = vals[mask/25%5], vals[mask/25%5]
		if o.Truth[1] == "" {
			o.Truth[1], o.Reported[1] = "null", "null"
		}
		o.Truth[2], o.Reported[2] = "1", "1"
		ok, why := tr.InSync("ns/a")
		if ok != tr.inSync(o) {
			t.Errorf("%v / %v: InSync %v (%s), inSync %v", o.Truth, o.Reported, ok, why, tr.inSync(o))
		}
		if want := o.Reported[0] == o.Truth[0] || o.Reported[0] == "" && o.Truth[0] == "null"; ok != want {
			t.Errorf("%v / %v: InSync %v, want %v", o.Truth, o.Reported, ok, want)
		}
	}
}

// TestDriftOver measures any stretch of the run from the same intervals.
func TestDriftOver(t *testing.T) {
	o := Check(kv(healthy()), invariants())
	if d := o.DriftOver(ms_(120), ms_(220)); d.ObjectMs != 40 || d.SpanMs != 100 || d.LongestMs != 50 {
		t.Errorf("drift over [120,220) %+v, want 20+20 cluster-ms over 100 ms, longest 50", d)
	}
	if d := o.DriftOver(ms_(300), ms_(900)); d.ObjectMs != 0 || d.MeanObjects != 0 || d.LongestMs != 0 {
		t.Errorf("drift over [300,900) %+v, want none", d)
	}
}

// TestStatsOfMatchesOneCallPerFigure: statsOf reads the quantiles and the
// maximum in one pass; they must be what one call per figure gives, for
// histograms with one sample, repeated values, and wide random spreads.
func TestStatsOfMatchesOneCallPerFigure(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		h := NewHistogram()
		n := 1 + rng.IntN(300)
		if i%10 == 0 {
			n = 1
		}
		for range n {
			v := rng.Int64N(int64(10 * time.Second / time.Microsecond))
			if i%3 == 0 {
				v = rng.Int64N(5_000) // many equal buckets
			}
			_ = h.RecordValue(v)
		}
		got := statsOf(h, 0, nil)
		want := LatencyStats{Count: h.TotalCount(), Mean: h.Mean() / 1000,
			P50: ms(time.Duration(h.ValueAtQuantile(50)) * time.Microsecond),
			P90: ms(time.Duration(h.ValueAtQuantile(90)) * time.Microsecond),
			P99: ms(time.Duration(h.ValueAtQuantile(99)) * time.Microsecond),
			Max: ms(time.Duration(h.Max()) * time.Microsecond)}
		if got != want {
			t.Fatalf("histogram %d (%d samples): statsOf %+v, one call each %+v", i, n, got, want)
		}
	}
}

// TestRecycledHistogramStartsEmpty: a Checker that reuses a recycled
// histogram reports what a fresh one does, and the recycled Outcome no
// longer holds it.
func TestRecycledHistogramStartsEmpty(t *testing.T) {
	slow := healthy()
	slow[len(slow)-3].T = ms_(900) // the second pod reflected 700 ms late
	first := Check(kv(slow), invariants())
	fresh := first.Histogram.Export()
	first.RecycleHistogram()
	if first.Histogram != nil {
		t.Fatal("RecycleHistogram left the histogram in the outcome")
	}
	for range 3 { // whichever histogram the pool hands out
		again := Check(kv(healthy()), invariants())
		if again.Histogram.TotalCount() != 2 || again.Latency.Max >= 700 {
			t.Fatalf("a reused histogram kept samples: count %d, max %v ms", again.Histogram.TotalCount(), again.Latency.Max)
		}
		again.RecycleHistogram()
	}
	if got := Check(kv(slow), invariants()).Histogram.Export(); !reflect.DeepEqual(got, fresh) {
		t.Fatal("the same history through a reused histogram exports differently")
	}
}

// TestMeanOfIsHistogramMean: the mean from the recorded values is
// HdrHistogram's own, to the last bit, at the edges of its counts' ranges
// and across its whole range; and a histogram whose values are not given
// falls back to h.Mean().
func TestMeanOfIsHistogramMean(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	edges := []int64{0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 4097, 1 << 20, 1<<20 + 1, int64(time.Hour / time.Microsecond)}
	for i := range 300 {
		h := NewHistogram()
		var values []int64
		n := 1 + rng.IntN(200)
		for k := range n {
			var v int64
			switch {
			case i < len(edges):
				v = edges[(i+k)%len(edges)]
			case i%2 == 0:
				v = rng.Int64N(1 << (1 + rng.IntN(32)))
			default:
				v = 1000 + rng.Int64N(400_000)
			}
			if h.RecordValue(v) == nil {
				values = append(values, v)
			}
		}
		if got, want := meanOf(h, values), h.Mean()/1000; got != want {
			t.Fatalf("histogram %d (%d values): meanOf %v, h.Mean %v", i, len(values), got, want)
		}
		if got, want := meanOf(h, values[:len(values)-1]), h.Mean()/1000; got != want {
			t.Fatalf("histogram %d: values not matching h: meanOf %v, want h.Mean %v", i, got, want)
		}
	}
}

// TestMeanSLO: a mean threshold fails when the mean latency exceeds it,
// also when every percentile threshold holds (one slow sample of two).
func TestMeanSLO(t *testing.T) {
	inv := invariants()
	inv.Latency = scenarios.Latency{Mean: scenarios.Duration{Duration: 100 * time.Millisecond}, Max: scenarios.Duration{Duration: 500 * time.Millisecond}}
	o := Check(kv(healthy()), inv)
	if lat := result(t, o, LatencySLO); !lat.Passed || !strings.Contains(lat.Detail, "mean 45.0ms ≤ 100ms") {
		t.Fatalf("means 40 and 50 ms under a 100 ms mean SLO: %+v", lat)
	}
	h := healthy()
	for i := range h {
		if h[i].Kind == kindClusterStatus && h[i].T == ms_(250) {
			h[i].T = ms_(600) // samples of 40 and 400 ms: mean 220 ms, max 400 ms
		}
	}
	o = Check(kv(h), inv)
	lat := result(t, o, LatencySLO)
	if lat.Passed || !strings.Contains(lat.Detail, "mean 220.0ms > 100ms") || strings.Contains(lat.Detail, "max 400.0ms >") {
		t.Fatalf("the mean must fail and the max hold: %+v (%+v)", lat, o.Latency)
	}
}

// TestOutsideDriftAfterRecovery: the stretch after a fault window until
// every object is back in sync is the fault's aftermath, left out of the
// drift outside the windows; InSyncFrom follows overlapping stretches.
func TestOutsideDriftAfterRecovery(t *testing.T) {
	s := time.Second
	o := &Outcome{
		drifts:  []interval{{2 * s, 3 * s}, {9 * s, 13 * s}, {12 * s, 14 * s}, {15 * s, 16 * s}},
		span:    interval{0, 20 * s},
		windows: []interval{{5 * s, 10 * s}},
	}
	if got := o.InSyncFrom(10 * s); got != 14*s {
		t.Errorf("InSyncFrom(10s) = %v, want 14s", got)
	}
	if got := o.InSyncFrom(4 * s); got != 4*s {
		t.Errorf("InSyncFrom(4s) = %v, want 4s", got)
	}
	// Outside the window only: [2,3) + [10,13) + [12,14) + [15,16) = 7 object-s over 15 s.
	_, _, plain := splitDrift(o.drifts, o.span, []window{{from: 5 * s, to: 10 * s}})
	if plain.ObjectMs != 7000 || plain.SpanMs != 15000 {
		t.Errorf("outside the window: %+v", plain)
	}
	// Without the aftermath [10, 14): [2,3) + [15,16) = 2 object-s over 11 s.
	if got := o.OutsideDriftAfterRecovery(); got.ObjectMs != 2000 || got.SpanMs != 11000 {
		t.Errorf("outside the window and its aftermath: %+v", got)
	}
}

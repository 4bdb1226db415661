package virtual

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/faults/netproxy"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

func builtin(t testing.TB, name string, seed uint64) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	s.Seed = seed
	return s
}

// withFault is the baseline with one fault from 5s for 5s.
func withFault(t testing.TB, seed uint64, f scenarios.Fault) *scenarios.Scenario {
	t.Helper()
	s := baseline(t, seed)
	f.Start.Duration, f.Duration.Duration = 5*time.Second, 5*time.Second
	s.Faults = []scenarios.Fault{f}
	return s
}

func invResult(t testing.TB, sum *report.Summary, name string) invariant.Result {
	t.Helper()
	for _, r := range sum.Invariants {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no invariant %q in %+v", name, sum.Invariants)
	return invariant.Result{}
}

// faultWindow returns the summary's only fault, checked to have run, and
// the mean latency inside its window and outside every window, over
// several seeds (pooled by sample count).
func pooledLatency(t *testing.T, name string, seeds int) (in, out float64, effects []map[string]float64) {
	t.Helper()
	var inSum, outSum float64
	var inN, outN int64
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		res := run(t, builtin(t, name, seed))
		sum := res.Summary
		if len(sum.Faults) != 1 {
			t.Fatalf("%s: %d faults", name, len(sum.Faults))
		}
		f := sum.Faults[0]
		if f.Skipped != "" || f.Error != "" || f.Window == nil || len(f.Effect) == 0 {
			t.Fatalf("%s seed %d: fault did not run: %+v", name, seed, f)
		}
		for _, inv := range []string{invariant.DriftConvergence, invariant.DriftStaleness, "faults"} {
			if r := invResult(t, sum, inv); !r.Passed {
				t.Errorf("%s seed %d: %s fails: %s", name, seed, inv, r.Detail)
			}
		}
		if !hasKind(res.Records, history.KindFaultStart) || !hasKind(res.Records, history.KindFaultStop) {
			t.Fatalf("%s seed %d: no fault-start/fault-stop records", name, seed)
		}
		w := f.Window.Latency
		inSum += w.Mean * float64(w.Count)
		inN += w.Count
		o := sum.LatencyOutside
		outSum += o.Mean * float64(o.Count)
		outN += o.Count
		effects = append(effects, f.Effect)
	}
	if inN == 0 || outN == 0 {
		t.Fatalf("%s: %d samples inside, %d outside", name, inN, outN)
	}
	return inSum / float64(inN), outSum / float64(outN), effects
}

// TestMissionFaultsTakeEffect runs each built-in single-fault scenario:
// the fault is modelled (fault-start/stop, an effect, the "faults" check
// passes), its effect is the one the fault stands for, status latency
// inside the window is a multiple of the latency outside it, and the
// status still converges after it.
func TestMissionFaultsTakeEffect(t *testing.T) {
	const seeds = 5
	for _, tc := range []struct {
		name     string
		minRatio float64
		check    func(t *testing.T, e map[string]float64)
	}{
		{scenarios.FaultWALFsyncDelay, 10, func(t *testing.T, e map[string]float64) {
			if e["fsyncs_delayed"] < 50 || math.Abs(e["injected_mean_ms"]-100) > 0.5 || e["wal_fsync_mean_ms"] < 100 {
				t.Errorf("fsyncs not delayed by 100ms: %v", e)
			}
		}},
		{scenarios.FaultNetworkRetransmit, 5, func(t *testing.T, e map[string]float64) {
			if e["retransmits"] == 0 || e["stall_total_ms"] < 200 || e["loss_rate"] < 0.03 || e["loss_rate"] > 0.2 {
				t.Errorf("no 10%% loss with RTO stalls: %v", e)
			}
		}},
		{scenarios.FaultWatcherExhaustion, 1.02, func(t *testing.T, e map[string]float64) {
			if e["slow_watchers_peak"] != 8*16+32 || e["commits_delayed"] == 0 || e["lock_held_ms_per_sync"] < 20 {
				t.Errorf("no sync-loop lock hold: %v", e)
			}
		}},
		{scenarios.FaultGCAssistPressure, 1.05, func(t *testing.T, e map[string]float64) {
			if e["gc_pauses"] < 70 || e["gc_pause_per_s"] <= e["gc_pause_per_s_before"] || e["operator_waits"] == 0 || e["sched_latency_max_ms"] < 15 {
				t.Errorf("no operator pauses: %v", e)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out, effects := pooledLatency(t, tc.name, seeds)
			t.Logf("%s over %d seeds: status latency mean %.1fms inside the window, %.1fms outside (x%.2f); effect seed 1: %v", tc.name, seeds, in, out, in/out, effects[0])
			if in < tc.minRatio*out {
				t.Errorf("latency inside the window x%.2f of outside, want at least x%.2f", in/out, tc.minRatio)
			}
			for _, e := range effects {
				tc.check(t, e)
			}
		})
	}
}

// TestIncidentFailsLatencyInsideWindows: the incident scenario fails its
// latency SLO on the virtual backend as on the local one, the slow samples
// inside the fault windows, and the status converges after them.
func TestIncidentFailsLatencyInsideWindows(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		sum := run(t, builtin(t, "incident-watch-lag", seed)).Summary
		if r := invResult(t, sum, invariant.LatencySLO); r.Passed {
			t.Errorf("seed %d: the incident did not break the 1s SLO: %s", seed, r.Detail)
		}
		if sum.Latency.P99 < 2000 {
			t.Errorf("seed %d: p99 %.0fms, want seconds", seed, sum.Latency.P99)
		}
		if sum.LatencyOutside.Count > 0 && sum.LatencyOutside.P99 >= 1000 {
			t.Errorf("seed %d: samples outside the windows are slow too (p99 %.0fms)", seed, sum.LatencyOutside.P99)
		}
		for _, name := range []string{invariant.DriftConvergence, "faults"} {
			if r := invResult(t, sum, name); !r.Passed {
				t.Errorf("seed %d: %s fails: %s", seed, name, r.Detail)
			}
		}
	}
}

// TestGroupCommit: with an fsync delay on, writes queue behind the running
// fsync and share the next one; commits stay in order.
func TestGroupCommit(t *testing.T) {
	s := baseline(t, 1)
	s.Faults = []scenarios.Fault{{Type: scenarios.FaultWALFsyncDelay, Delay: scenarios.Duration{Duration: 100 * time.Millisecond}, Probability: 1}}
	w := &world{s: s, opts: Options{}.withDefaults(), k: newKernel(1)}
	fm := newFaultModel(w)
	fm.all[0].on = true
	base := time.Millisecond
	a := fm.commitTime(0, base)                   // idle disk: fsync [0, 101ms)
	b := fm.commitTime(10*time.Millisecond, base) // waits for the next one
	c := fm.commitTime(50*time.Millisecond, base) // shares it
	d := fm.commitTime(250*time.Millisecond, base)
	if a != 101*time.Millisecond || b != 202*time.Millisecond || c != b || d != 351*time.Millisecond {
		t.Fatalf("commits at %v %v %v %v, want 101ms 202ms 202ms 351ms", a, b, c, d)
	}
	if e := fm.effectOf(fm.all[0]); e["wal_fsyncs"] != 3 || e["fsyncs_delayed"] != 3 {
		t.Fatalf("effect %v, want 3 fsyncs, all delayed", e)
	}
	fm.all[0].on = false
	if got := fm.commitTime(400*time.Millisecond, base); got != 401*time.Millisecond {
		t.Fatalf("after the window: commit at %v, want 401ms", got)
	}
}

// TestRetransmitMatchesNetproxyModel: the link's stalls follow
// netproxy.RetransmitModel (the local backend's toxic): the mean stall per
// chunk over many chunks is the model's mean within 5%.
func TestRetransmitMatchesNetproxyModel(t *testing.T) {
	for _, loss := range []float64{0.02, 0.1, 0.3} {
		s := baseline(t, 1)
		s.Faults = []scenarios.Fault{{Type: scenarios.FaultNetworkRetransmit, Link: scenarios.LinkAPIServerEtcd, Loss: loss,
			MinRTO: scenarios.Duration{Duration: 200 * time.Millisecond}, MaxRTO: scenarios.Duration{Duration: 120 * time.Second}}}
		w := &world{s: s, opts: Options{}.withDefaults(), k: newKernel(1)}
		fm := newFaultModel(w)
		f := fm.all[0]
		f.on = true
		const n = 200_000
		for i := range n {
			fm.cross(linkAPIEtcd, up, laneRequest, time.Duration(i)*time.Second)
		}
		want := netproxy.RetransmitModel{P: loss, MinRTO: 200 * time.Millisecond, MaxRTO: 120 * time.Second}.Mean()
		got := f.sum / n
		if math.Abs(float64(got-want)) > 0.05*float64(want) {
			t.Errorf("loss %.2f: mean stall %v, netproxy model %v", loss, got, want)
		}
		if rate := float64(f.m) / n; math.Abs(rate-loss) > 0.05*loss+0.002 {
			t.Errorf("loss %.2f: %.4f of chunks lost", loss, rate)
		}
	}
}

// TestLinkKeepsOrder: on the operator's link a stalled chunk holds back the
// chunks sent after it, also after the fault ended.
func TestLinkKeepsOrder(t *testing.T) {
	s := baseline(t, 1)
	s.Faults = []scenarios.Fault{{Type: scenarios.FaultNetworkRetransmit, Link: scenarios.LinkOperatorAPIServer, Loss: 0.5,
		MinRTO: scenarios.Duration{Duration: 200 * time.Millisecond}, MaxRTO: scenarios.Duration{Duration: time.Second}}}
	w := &world{s: s, opts: Options{}.withDefaults(), k: newKernel(3)}
	fm := newFaultModel(w)
	fm.all[0].on = true
	var last time.Duration
	stalled := false
	for i := range 100 {
		at := fm.cross(linkOpAPI, down, laneRequest, time.Duration(i)*time.Millisecond)
		if at < last {
			t.Fatalf("chunk %d arrives at %v, before the one sent before it (%v)", i, at, last)
		}
		stalled = stalled || at > time.Duration(i)*time.Millisecond
		last = at
	}
	if !stalled {
		t.Fatal("no chunk was stalled at 50% loss")
	}
	fm.all[0].on = false
	if at := fm.cross(linkOpAPI, down, laneRequest, 100*time.Millisecond); at != last {
		t.Fatalf("after the fault a chunk arrives at %v, before held data (%v)", at, last)
	}
}

// TestFaultStreamsDoNotShiftOthers: a fault that never starts (its
// afterOps is beyond the workload) leaves the history exactly as without
// it, but for its own records: fault draws have their own streams.
func TestFaultStreamsDoNotShiftOthers(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		plain := run(t, baseline(t, seed))
		s := baseline(t, seed)
		s.Faults = []scenarios.Fault{{Type: scenarios.FaultGCAssistPressure, AfterOps: 1_000_000, Entries: 1000, Rate: 4}}
		with := run(t, s)
		if with.TraceHash != plain.TraceHash {
			t.Fatalf("seed %d: a fault that never started changed the history: %s", seed, firstDiff(plain.Records, with.Records))
		}
		if f := with.Summary.Faults[0]; f.Error == "" {
			t.Fatalf("seed %d: a fault that never started is not reported: %+v", seed, f)
		}
	}
}

// TestFaultsDeterministic: every fault scenario replays exactly.
func TestFaultsDeterministic(t *testing.T) {
	for _, name := range []string{scenarios.FaultWALFsyncDelay, scenarios.FaultNetworkRetransmit, scenarios.FaultWatcherExhaustion, scenarios.FaultGCAssistPressure, "incident-watch-lag"} {
		for seed := uint64(1); seed <= 10; seed++ {
			a, b := run(t, builtin(t, name, seed)), run(t, builtin(t, name, seed))
			if a.TraceHash != b.TraceHash {
				t.Fatalf("%s seed %d: %s", name, seed, firstDiff(a.Records, b.Records))
			}
		}
	}
}

// TestUnmodelledFaultIsSkipped: a fault type with no model (failpoint) is
// reported as skipped and fails the faults check.
func TestUnmodelledFaultIsSkipped(t *testing.T) {
	s := baseline(t, 1)
	s.Faults = []scenarios.Fault{{Type: "no-such-model"}}
	res := run(t, s)
	if res.Summary.Faults[0].Skipped == "" || invResult(t, res.Summary, "faults").Passed || res.Summary.Passed {
		t.Fatalf("an unmodelled fault was not reported skipped: %+v", res.Summary.Faults)
	}
	if !hasKind(res.Records, history.KindFaultSkipped) {
		t.Fatal("no fault-skipped record")
	}
}

// ---- Sieve perturbations -------------------------------------------------

func countOps(recs []history.Record, kind, op string) int {
	n := 0
	for _, r := range recs {
		if r.Kind == kind && r.Op == op {
			n++
		}
	}
	return n
}

// TestStaleRead: the operator's reads come from a view 2s old; its status
// writes then conflict (its copy is older than the stored object), its
// status lags, and once the window is over it converges.
func TestStaleRead(t *testing.T) {
	differing, conflicts, lagging := 0, 0, 0
	for seed := uint64(1); seed <= 10; seed++ {
		res := run(t, withFault(t, seed, scenarios.Fault{Type: scenarios.FaultStaleRead, Lag: scenarios.Duration{Duration: 2 * time.Second}}))
		f := res.Summary.Faults[0]
		if f.Effect["stale_reads"] == 0 {
			t.Fatalf("seed %d: no stale reads: %v", seed, f.Effect)
		}
		if f.Effect["reads_differing"] > 0 {
			differing++
		}
		for _, r := range res.Records {
			if r.Kind == history.KindStatusWrite && r.Err != "" && r.T >= 5*time.Second && r.T < 10*time.Second {
				conflicts++
			}
		}
		if f.Window.Latency.Max > 1000 {
			lagging++
		}
		if r := invResult(t, res.Summary, invariant.DriftConvergence); !r.Passed {
			t.Errorf("seed %d: no convergence after stale reads: %s", seed, r.Detail)
		}
	}
	t.Logf("10 seeds: %d with reads differing from the fresh view, %d failed status writes in the windows, %d with a status lag over 1s", differing, conflicts, lagging)
	if differing < 8 || conflicts == 0 {
		t.Fatal("stale reads took no measurable effect")
	}
}

// TestWithholdEvents: Pod events are withheld for 5s, then the relist
// delivers only the latest state per Pod (fewer events than were
// withheld), withheld deletes as delete-unknown; the status lags inside the
// window and converges after it.
func TestWithholdEvents(t *testing.T) {
	unknown := 0
	for seed := uint64(1); seed <= 10; seed++ {
		res := run(t, withFault(t, seed, scenarios.Fault{Type: scenarios.FaultWithholdEvents, Resource: scenarios.ResourcePods}))
		e := res.Summary.Faults[0].Effect
		if e["events_withheld"] == 0 || e["events_delivered_on_relist"] == 0 || e["events_delivered_on_relist"] > e["events_withheld"] {
			t.Fatalf("seed %d: withheld %v events, delivered %v on relist", seed, e["events_withheld"], e["events_delivered_on_relist"])
		}
		n := countOps(res.Records, history.KindEvent, OpDeleteUnknown)
		if n != int(e["delete_unknown"]) {
			t.Fatalf("seed %d: %d delete-unknown events in the history, effect says %v", seed, n, e["delete_unknown"])
		}
		unknown += n
		for _, r := range res.Records {
			if r.Kind == history.KindEvent && r.Resource == "pod" && r.T > 5*time.Second+10*time.Millisecond && r.T < 10*time.Second {
				t.Fatalf("seed %d: a Pod event reached the operator inside the window: %+v", seed, r)
			}
		}
		if r := invResult(t, res.Summary, invariant.DriftConvergence); !r.Passed {
			t.Errorf("seed %d: no convergence after withheld events: %s", seed, r.Detail)
		}
	}
	if unknown == 0 {
		t.Fatal("no withheld delete came back as delete-unknown in 10 seeds")
	}
}

// TestCrashRestart: the operator crashes in the middle of a reconcile,
// restarts after 1s with empty caches, relists, and the correct operator
// converges; the crash leaves no reconcile-end for the interrupted
// reconcile.
func TestCrashRestart(t *testing.T) {
	points := map[float64]bool{}
	for seed := uint64(1); seed <= 20; seed++ {
		res := run(t, withFault(t, seed, scenarios.Fault{Type: scenarios.FaultCrashRestart, RestartDelay: scenarios.Duration{Duration: time.Second}}))
		e := res.Summary.Faults[0].Effect
		if e["crashes"] != 1 || e["down_ms"] != 1000 || e["relisted_objects"] == 0 {
			t.Fatalf("seed %d: effect %v", seed, e)
		}
		points[e["crash_call"]] = true
		restarts, starts, ends := 0, 0, 0
		for _, r := range res.Records {
			switch r.Kind {
			case history.KindOperatorReady:
				restarts++
			case history.KindReconcileStart:
				starts++
			case history.KindReconcileEnd:
				ends++
			}
		}
		if restarts != 2 {
			t.Fatalf("seed %d: %d operator-ready records, want 2 (start, restart)", seed, restarts)
		}
		if e["crash_call"] > 0 && starts != ends+1 {
			t.Fatalf("seed %d: %d reconcile starts, %d ends: the crashed reconcile must not end", seed, starts, ends)
		}
		for _, r := range res.Summary.Invariants {
			if !r.Passed {
				t.Errorf("seed %d: %s fails after a crash-restart: %s", seed, r.Name, r.Detail)
			}
		}
	}
	if len(points) < 3 {
		t.Errorf("crash points seen: %v, want several", points)
	}
}

// TestResetConnectionsRewatches: resetting the operator's connection makes
// its informers watch again; the run still passes and replays exactly.
func TestResetConnectionsRewatches(t *testing.T) {
	f := scenarios.Fault{Type: scenarios.FaultNetworkRetransmit, Link: scenarios.LinkOperatorAPIServer, Latency: scenarios.Duration{Duration: time.Millisecond},
		ResetConnections: true, MinRTO: scenarios.Duration{Duration: 200 * time.Millisecond}, MaxRTO: scenarios.Duration{Duration: time.Second}}
	for seed := uint64(1); seed <= 5; seed++ {
		a, b := run(t, withFault(t, seed, f)), run(t, withFault(t, seed, f))
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: %s", seed, firstDiff(a.Records, b.Records))
		}
		if !a.Summary.Passed {
			t.Errorf("seed %d: %+v", seed, a.Summary.Invariants)
		}
	}
}

// TestWatchTooOldRelists: a watch from a revision the apiserver no longer
// holds gets "410 Gone" and relists; one it holds replays the events.
func TestWatchTooOldRelists(t *testing.T) {
	w, c := newTestWorld(t)
	w.store.log = []logEntry{}
	for i := range 3 {
		createCluster(t, w, c, i)
	}
	settle(w)
	if evs, ok := w.store.since(1); !ok || len(evs) != 2 {
		t.Fatalf("since(1): %d events, ok %v; want 2, true", len(evs), ok)
	}
	w.k.after(watchCacheRetention+time.Second, func() {})
	settle(w)
	createCluster(t, w, c, 3)
	settle(w)
	if _, ok := w.store.since(1); ok {
		t.Fatal("a watch from a revision older than the watch cache was served")
	}
}

// TestOperatorLinkLatencyDoesNotAccumulate: with a plain 100 ms latency on
// the operator's link (slow-apiserver), a workload change reaches the
// operator's handler about 100 ms after it was written — not later: events
// do not queue behind one another's link latency, and the workload's
// writes do not wait behind the operator's future commits.
func TestOperatorLinkLatencyDoesNotAccumulate(t *testing.T) {
	res := run(t, builtin(t, "slow-apiserver", 1))
	var lags []time.Duration
	for i, r := range res.Records {
		if r.Kind != history.KindOp || r.Op != "annotate" {
			continue
		}
		for _, e := range res.Records[i:] {
			if e.Kind == history.KindEvent && e.Resource == "kvcluster" && e.Cluster == r.Object && e.T >= r.T {
				lags = append(lags, e.T-r.T)
				break
			}
		}
	}
	if len(lags) < 20 {
		t.Fatalf("only %d annotate operations seen by the operator", len(lags))
	}
	slices.Sort(lags)
	p50, p90 := lags[len(lags)/2], lags[len(lags)*9/10]
	t.Logf("workload write -> operator event: p50 %v, p90 %v over %d writes", p50, p90, len(lags))
	if p50 < 100*time.Millisecond || p50 > 110*time.Millisecond || p90 > 150*time.Millisecond {
		t.Fatalf("write -> event p50 %v, p90 %v: want about 100ms (the link's latency plus 1-3ms delivery)", p50, p90)
	}
	if f := invResult(t, res.Summary, invariant.LatencySLO); !f.Passed {
		t.Errorf("slow-apiserver fails its latency SLO in the model (it passes locally): %s", f.Detail)
	}
}

// TestBurstScheduleIsTheLocalOne: the virtual link model draws the same
// blackouts from a seed as the local backend's proxy (faults.BurstSchedule),
// and a chunk sent as a blackout begins is delivered after the RTO backoff
// across it; the chunks queued behind it come right after.
func TestBurstScheduleIsTheLocalOne(t *testing.T) {
	b := &scenarios.Burst{Every: scenarios.Duration{Duration: 10 * time.Second},
		Length: scenarios.DurationRange{Min: scenarios.Duration{Duration: time.Second}, Max: scenarios.Duration{Duration: 3 * time.Second}}, Loss: 1}
	for seed := uint64(1); seed <= 3; seed++ {
		s := baseline(t, seed)
		s.Faults = []scenarios.Fault{
			{Type: scenarios.FaultWALFsyncDelay, Delay: scenarios.Duration{Duration: 10 * time.Millisecond}, Probability: 1},
			{Type: scenarios.FaultNetworkRetransmit, Link: scenarios.LinkOperatorAPIServer, Burst: b,
				MinRTO: scenarios.Duration{Duration: 200 * time.Millisecond}, MaxRTO: scenarios.Duration{Duration: 120 * time.Second}}}
		w := &world{s: s, opts: Options{}.withDefaults(), k: newKernel(seed)}
		fm := newFaultModel(w)
		f := fm.all[1]
		local, err := faults.BurstSchedule(seed, 1, b)
		if err != nil {
			t.Fatal(err)
		}
		if f.burst == nil || !slices.Equal(f.burst.Blackouts(time.Hour), local.Blackouts(time.Hour)) {
			t.Fatalf("seed %d: the virtual blackouts differ from the local proxy's", seed)
		}
		f.on, f.from = true, 0
		bo := f.burst.Blackouts(time.Minute)[0]
		at := fm.cross(linkOpAPI, down, laneRequest, bo.From)
		want := bo.From + 200*time.Millisecond
		for rto := 200 * time.Millisecond; want < bo.To; {
			rto *= 2
			want += rto
		}
		if at != want {
			t.Errorf("seed %d: chunk sent at %v as a %v blackout begins arrives at %v, want %v (the RTO backoff)", seed, bo.From, bo.Len(), at, want)
		}
		if next := fm.cross(linkOpAPI, down, laneRequest, bo.From+10*time.Millisecond); next != at {
			t.Errorf("seed %d: the chunk queued behind arrives at %v, want %v (with the head)", seed, next, at)
		}
		f.to = time.Minute
		e := fm.effectOf(f)
		if e["blackouts"] != 6 || e["stalls_over_1s"] != 1 || e["stall_max_ms"] != ms(want-bo.From) {
			t.Errorf("seed %d: effect %v", seed, e)
		}
	}
}

// TestBurstRunReplays: a virtual run with bursts on the operator's link
// replays exactly, stalls seconds at a time and shows it in its effect.
func TestBurstRunReplays(t *testing.T) {
	s := baseline(t, 1)
	s.Faults = []scenarios.Fault{{Type: scenarios.FaultNetworkRetransmit, Link: scenarios.LinkOperatorAPIServer,
		Start: scenarios.Duration{Duration: 2 * time.Second}, Duration: scenarios.Duration{Duration: 15 * time.Second},
		Burst: &scenarios.Burst{Every: scenarios.Duration{Duration: 5 * time.Second},
			Length: scenarios.DurationRange{Min: scenarios.Duration{Duration: time.Second}, Max: scenarios.Duration{Duration: 3 * time.Second}}}}}
	if err := s.SetDefaults(); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	a, b := run(t, s), run(t, s)
	if a.TraceHash != b.TraceHash {
		t.Fatalf("%s", firstDiff(a.Records, b.Records))
	}
	e := a.Summary.Faults[0].Effect
	if e["blackouts"] != 3 || e["stalls_over_1s"] < 1 || e["stall_max_ms"] < 1000 {
		t.Errorf("effect %v: want 3 blackouts and stalls of seconds", e)
	}
	t.Logf("effect: %v", e)
}

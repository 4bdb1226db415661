package virtual

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// goldenBaselineSeed1 is the TraceHash of the built-in baseline scenario,
// seed 1, default Options. It changes whenever the history of that run
// changes: a change to the model, to its defaults, to the reference
// operator, to the workload generator or the kubelet sampler. If the change
// is intended, update it with the hash the failing test prints (run
// `go test ./operator/virtual -run TestGoldenTraceHash -v`) and say why in the
// commit message. If it is not intended, determinism broke: find out why.
const goldenBaselineSeed1 = "e7890551b4e1a3a5f014a44be4e1e2b1fae492f8a5276c3992acfb60193c889d"

func baseline(t testing.TB, seed uint64) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Builtin("baseline")
	if err != nil {
		t.Fatal(err)
	}
	s.Seed = seed
	return s
}

func run(t testing.TB, s *scenarios.Scenario) *Result {
	t.Helper()
	res, err := Run(s, Options{})
	if err != nil {
		t.Fatalf("seed %d: %v", s.Seed, err)
	}
	return res
}

func TestBaselinePasses(t *testing.T) {
	res := run(t, baseline(t, 1))
	for _, r := range res.Outcome.Results {
		t.Logf("%s passed=%v: %s", r.Name, r.Passed, r.Detail)
	}
	t.Logf("events %d, reconciles %d, records %d, sim %v, counts %v", res.Events, res.Reconciles, len(res.Records), res.SimTime, res.Summary.Counts)
	if f := res.Outcome.FirstFailure(); f != nil {
		t.Fatalf("baseline seed 1 fails %s: %s", f.Name, f.Detail)
	}
	if !res.Summary.Passed || res.Summary.Backend != "virtual" {
		t.Fatalf("summary: passed=%v backend=%q", res.Summary.Passed, res.Summary.Backend)
	}
	// The history has every kind the local backend produces.
	for _, kind := range []string{
		history.KindSubject, history.KindObjectCreated, history.KindTruth, history.KindReported, history.KindObjectDeleted,
		history.KindPodCreated, history.KindPodReady, history.KindPodDeleted,
		history.KindOp, history.KindKubeletReady, history.KindEvent,
		history.KindReconcileStart, history.KindReconcileEnd, history.KindStatusWrite,
		history.KindWorkloadStart, history.KindWorkloadEnd, history.KindConverged, history.KindRunEnd,
	} {
		if !hasKind(res.Records, kind) {
			t.Errorf("history has no %q record", kind)
		}
	}
}

func hasKind(recs []history.Record, kind string) bool {
	for _, r := range recs {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

// TestBaselineManySeeds: the healthy operator passes on every seed.
func TestBaselineManySeeds(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		res := run(t, baseline(t, seed))
		if f := res.Outcome.FirstFailure(); f != nil {
			t.Errorf("baseline seed %d fails %s: %s", seed, f.Name, f.Detail)
		}
	}
}

func TestDeterminism(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	seen := map[string]uint64{}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		a, b := run(t, baseline(t, seed)), run(t, baseline(t, seed))
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: two runs differ: %s vs %s\nfirst difference: %s", seed, a.TraceHash, b.TraceHash, firstDiff(a.Records, b.Records))
		}
		if other, dup := seen[a.TraceHash]; dup {
			t.Fatalf("seeds %d and %d have the same trace hash %s", other, seed, a.TraceHash)
		}
		seen[a.TraceHash] = seed
	}
}

func firstDiff(a, b []history.Record) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		if !sameRecord(a[i], b[i]) {
			return strings.Join([]string{recString(a[i]), recString(b[i])}, " vs ")
		}
	}
	return "lengths differ"
}

func sameRecord(a, b history.Record) bool {
	ha, hb := newTraceHasher(), newTraceHasher()
	ha.add(&a)
	hb.add(&b)
	return string(ha.h.Sum(nil)) == string(hb.h.Sum(nil))
}

func recString(r history.Record) string {
	h := newTraceHasher()
	h.add(&r)
	return string(h.buf)
}

func TestGoldenTraceHash(t *testing.T) {
	res := run(t, baseline(t, 1))
	if res.TraceHash != goldenBaselineSeed1 {
		t.Fatalf("baseline seed 1: trace hash %s, golden %s (see goldenBaselineSeed1 for when and how to update it)", res.TraceHash, goldenBaselineSeed1)
	}
}

// TestNoWallClock runs one seed in several goroutines at once: if anything
// on the simulated path read the wall clock, the global rand or a shared
// mutable state, the hashes would differ.
func TestNoWallClock(t *testing.T) {
	const n = 4
	hashes := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(baseline(t, 7), Options{})
			if err == nil {
				hashes[i] = res.TraceHash
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if hashes[i] != hashes[0] {
			t.Fatalf("concurrent runs of seed 7 differ: %s vs %s", hashes[i], hashes[0])
		}
	}
	if seq := run(t, baseline(t, 7)).TraceHash; seq != hashes[0] {
		t.Fatalf("concurrent and sequential runs of seed 7 differ: %s vs %s", hashes[0], seq)
	}
}

// TestNegativeControlFreezeStatus: with the seeded freeze-status bug the
// drift-convergence invariant must fail; the virtual backend must catch it
// within the first 20 seeds.
func TestNegativeControlFreezeStatus(t *testing.T) {
	caught, first := 0, uint64(0)
	for seed := uint64(1); seed <= 20; seed++ {
		s := baseline(t, seed)
		s.Operator.Bugs = []string{bugs.FreezeStatus}
		res := run(t, s)
		for _, r := range res.Outcome.Results {
			if r.Name == invariant.DriftConvergence && !r.Passed {
				caught++
				if first == 0 {
					first = seed
					t.Logf("seed %d: %s: %s", seed, r.Name, r.Detail)
				}
			}
		}
	}
	t.Logf("freeze-status caught by %s on %d of 20 seeds; first at seed %d", invariant.DriftConvergence, caught, first)
	if caught == 0 {
		t.Fatalf("freeze-status was not caught by %s in 20 seeds", invariant.DriftConvergence)
	}
}

// TestRunDirReplays: the bundle written to Options.Dir holds the same
// history, and checking it again gives the same verdicts.
func TestRunDirReplays(t *testing.T) {
	dir := t.TempDir()
	s := baseline(t, 3)
	res, err := Run(s, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := history.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != nil {
		t.Fatalf("a run into a directory kept its %d records in memory", len(res.Records))
	}
	mem, err := Run(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(mem.Records) || mem.TraceHash != res.TraceHash {
		t.Fatalf("history.jsonl has %d records, the same run in memory %d (trace hashes %s, %s)", len(recs), len(mem.Records), res.TraceHash, mem.TraceHash)
	}
	for i := range recs {
		a, _ := json.Marshal(recs[i])
		b, _ := json.Marshal(mem.Records[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("record %d: history.jsonl %s, in memory %s", i, a, b)
		}
	}
	again := invariant.Check(recs, s.Invariants)
	for i, r := range again.Results {
		if r != res.Outcome.Results[i] {
			t.Errorf("replayed %s: %+v, run: %+v", r.Name, r, res.Outcome.Results[i])
		}
	}
	sum, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Backend != Backend || sum.Seed != 3 || sum.Passed != res.Outcome.Passed() {
		t.Fatalf("summary.json: backend %q seed %d passed %v", sum.Backend, sum.Seed, sum.Passed)
	}
	h, err := os.ReadFile(filepath.Join(dir, "trace.sha256"))
	if err != nil || strings.TrimSpace(string(h)) != res.TraceHash {
		t.Fatalf("trace.sha256: %q, %v; want %s", h, err, res.TraceHash)
	}
}

func TestEventBudgetIsAnError(t *testing.T) {
	_, err := Run(baseline(t, 1), Options{MaxEvents: 100})
	if err == nil || !strings.Contains(err.Error(), "event budget") {
		t.Fatalf("run with a 100-event budget: %v, want an event budget error", err)
	}
}

// TestSlowerControlPlaneStillDeterministic: the model's knobs change the
// history, and each setting is deterministic on its own.
func TestSlowerControlPlaneStillDeterministic(t *testing.T) {
	slow := Options{CommitLatency: 20 * time.Millisecond, DeliveryMin: 5 * time.Millisecond, DeliveryMax: 50 * time.Millisecond, ReconcileTime: 5 * time.Millisecond}
	a, err := Run(baseline(t, 5), slow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(baseline(t, 5), slow)
	if err != nil {
		t.Fatal(err)
	}
	if a.TraceHash != b.TraceHash {
		t.Fatalf("slow control plane, seed 5: %s vs %s", a.TraceHash, b.TraceHash)
	}
	if a.TraceHash == run(t, baseline(t, 5)).TraceHash {
		t.Fatal("the slow control plane gave the same history as the default one")
	}
	if f := a.Outcome.FirstFailure(); f != nil {
		t.Logf("slow control plane, seed 5: %s fails: %s", f.Name, f.Detail)
	}
	t.Logf("slow control plane, seed 5: latency p99 %.1fms, converged after %v", a.Outcome.Latency.P99, a.Outcome.ConvergedAfter)
}

// TestVerdictRunSameAsFullRun: a verdict run (no Records, its history in a
// reused buffer) gives the Outcome, Summary and trace hash of a full run,
// and what it returned stays intact while later runs reuse the buffer.
func TestVerdictRunSameAsFullRun(t *testing.T) {
	type pair struct{ full, verdict *Result }
	var kept []pair
	for _, name := range []string{"baseline", "incident-watch-lag", "stale-reads", "operator-crash"} {
		for seed := uint64(1); seed <= 3; seed++ {
			full := run(t, builtin(t, name, seed))
			v, err := Run(builtin(t, name, seed), Options{Verdict: true})
			if err != nil {
				t.Fatal(err)
			}
			if v.Records != nil {
				t.Fatalf("%s seed %d: a verdict run returned %d records", name, seed, len(v.Records))
			}
			kept = append(kept, pair{full, v})
		}
	}
	for _, p := range kept { // after every run: the buffer has been reused
		f, v := p.full, p.verdict
		fs, vs := *f.Summary, *v.Summary
		fs.DurationMs, vs.DurationMs = 0, 0
		if f.TraceHash != v.TraceHash || !reflect.DeepEqual(fs, vs) {
			t.Errorf("%s seed %d: verdict run differs: hash %s vs %s, summary equal %v", fs.Scenario, fs.Seed, f.TraceHash, v.TraceHash, reflect.DeepEqual(fs, vs))
		}
		if v.Outcome.Histogram != nil {
			t.Errorf("%s seed %d: a verdict run kept its histogram", fs.Scenario, fs.Seed)
		}
		fo, vo := *f.Outcome, *v.Outcome
		fo.Histogram = nil
		if !reflect.DeepEqual(fo, vo) {
			t.Errorf("%s seed %d: verdict run's outcome differs", fs.Scenario, fs.Seed)
		}
		// the full run's histogram is its own: no later run reused it
		if resolved := resolvedSamples(f.Outcome); f.Outcome.Histogram.TotalCount() != resolved {
			t.Errorf("%s seed %d: histogram holds %d samples, the run resolved %d", fs.Scenario, fs.Seed, f.Outcome.Histogram.TotalCount(), resolved)
		}
	}
}

// resolvedSamples counts the latency samples of an outcome that were
// reflected in status before the run ended.
func resolvedSamples(o *invariant.Outcome) int64 {
	var n int64
	for _, s := range o.Samples {
		if !s.Unresolved {
			n++
		}
	}
	return n
}

package shrink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/backend"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

func builtin(t *testing.T, name string) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fails runs s on the virtual backend and reports whether inv fails.
func fails(t *testing.T, s *scenarios.Scenario, inv string) bool {
	t.Helper()
	r, err := virtual.Verdict(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	d, bad := failure(r, inv)
	t.Logf("%s seed %d: %s failed=%v %s", s.Name, s.Seed, inv, bad, d)
	return bad
}

// A broken operator under the incident's faults: the shrink keeps the drift
// failure while dropping what it does not need.
func TestShrinkKeepsTheSameInvariantFailing(t *testing.T) {
	s := builtin(t, "incident-watch-lag")
	s.Operator.Bugs = []string{bugs.FreezeStatus}
	s.Seed = 5
	var log bytes.Buffer
	r, err := Shrink(context.Background(), s, Options{Run: virtual.Verdict, Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(log.String())
	if r.Invariant != invariant.DriftConvergence {
		t.Fatalf("target %q, want %s", r.Invariant, invariant.DriftConvergence)
	}
	if r.After.Faults >= r.Before.Faults || r.After.Ops >= r.Before.Ops || r.After.Workload >= r.Before.Workload {
		t.Fatalf("not smaller: before %s, after %s", r.Before, r.After)
	}
	if !fails(t, r.Minimal, r.Invariant) {
		t.Fatal("the minimal scenario does not fail")
	}
	if r.Runs > DefaultMaxRuns || r.Kept != len(r.Steps) || r.Kept == 0 {
		t.Fatalf("runs %d, kept %d, steps %v", r.Runs, r.Kept, r.Steps)
	}
	if n := strings.Count(log.String(), "\n"); n != r.Runs {
		t.Fatalf("%d progress lines for %d runs", n, r.Runs)
	}
	// Deterministic: the same input shrinks to the same scenario.
	again, err := Shrink(context.Background(), s, Options{Run: virtual.Verdict})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := scenarios.Encode(r.Minimal)
	b, _ := scenarios.Encode(again.Minimal)
	if !bytes.Equal(a, b) || again.TraceHash != r.TraceHash {
		t.Fatalf("two shrinks differ:\n%s\n%s", a, b)
	}
}

func TestNothingToShrink(t *testing.T) {
	_, err := Shrink(context.Background(), builtin(t, "baseline"), Options{Run: virtual.Verdict})
	if !errors.Is(err, ErrNothingToShrink) || !strings.Contains(err.Error(), "passes every invariant") {
		t.Fatalf("baseline: %v", err)
	}
	s := builtin(t, "baseline")
	s.Operator.Bugs = []string{bugs.FreezeStatus}
	_, err = Shrink(context.Background(), s, Options{Run: virtual.Verdict, Invariant: invariant.DriftStaleness})
	if !errors.Is(err, ErrNothingToShrink) || !strings.Contains(err.Error(), "failing: drift-convergence") {
		t.Fatalf("a passing invariant named: %v", err)
	}
	_, err = Shrink(context.Background(), s, Options{Run: virtual.Verdict, Invariant: "nope"})
	if err == nil || errors.Is(err, ErrNothingToShrink) || !strings.Contains(err.Error(), `no invariant "nope"`) {
		t.Fatalf("unknown invariant: %v", err)
	}
}

// fake is a model of a failure for testing the search itself: the named
// invariant fails when the scenario has a fault of type need, the workload
// lasts at least minDur and has at least minClusters clusters.
func fake(need string, minDur time.Duration, minClusters int, runs *int) backend.Func {
	return func(ctx context.Context, s *scenarios.Scenario) (*backend.Verdict, error) {
		*runs++
		has := false
		for _, f := range s.Faults {
			has = has || f.Type == need
		}
		bad := has && s.Workload.Duration.Duration >= minDur && s.Workload.Objects >= minClusters
		return &backend.Verdict{TraceHash: fmt.Sprint(*runs), Summary: &report.Summary{Invariants: []invariant.Result{
			{Name: invariant.LatencySLO, Passed: !bad, Detail: "p99 too high"},
			{Name: "faults", Passed: len(s.Faults) == 0, Detail: "skipped"},
		}}}, nil
	}
}

// The search keeps exactly what the failure needs: the one fault that
// causes it, and the workload size below which it goes away.
func TestShrinkKeepsWhatTheFailureNeeds(t *testing.T) {
	s := builtin(t, "incident-watch-lag")
	runs := 0
	r, err := Shrink(context.Background(), s, Options{Run: fake(scenarios.FaultWatcherExhaustion, 5*time.Second, 2, &runs)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Invariant != invariant.LatencySLO {
		t.Fatalf("target %q: the faults check must not be preferred", r.Invariant)
	}
	m := r.Minimal
	if len(m.Faults) != 1 || m.Faults[0].Type != scenarios.FaultWatcherExhaustion {
		t.Fatalf("faults %v, want only watcher-exhaustion", m.Faults)
	}
	if d := m.Workload.Duration.Duration; d < 5*time.Second || d >= 10*time.Second || m.Workload.Objects != 2 {
		t.Fatalf("workload %s on %d clusters, want 5s..10s on 2", d, m.Workload.Objects)
	}
	if m.Workload.Annotate.Rate != 0 || m.Workload.Scale.Every.Duration != 0 || m.Workload.DeleteObjects != 0 {
		t.Fatalf("workload not reduced: %+v", m.Workload)
	}
	if _, l := window(&m.Faults[0], m.Workload.Duration.Duration); l >= 1*time.Second {
		t.Fatalf("fault window %s not shortened", m.Faults[0].Describe())
	}
	if runs != r.Runs {
		t.Fatalf("%d runs counted, %d made", r.Runs, runs)
	}
}

func TestShrinkStopsAtTheBudgetAndOnCancel(t *testing.T) {
	s := builtin(t, "incident-watch-lag")
	runs := 0
	r, err := Shrink(context.Background(), s, Options{MaxRuns: 4, Run: fake(scenarios.FaultWALFsyncDelay, time.Second, 1, &runs)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Runs != 4 || runs != 4 || !r.Exhausted || r.Interrupted {
		t.Fatalf("runs %d (%d), exhausted %v, interrupted %v", r.Runs, runs, r.Exhausted, r.Interrupted)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runs = 0
	run := fake(scenarios.FaultWALFsyncDelay, time.Second, 1, &runs)
	r, err = Shrink(ctx, s, Options{Run: func(ctx context.Context, s *scenarios.Scenario) (*backend.Verdict, error) {
		if runs == 6 {
			cancel()
		}
		return run(ctx, s)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || r.Runs != 7 {
		t.Fatalf("runs %d, interrupted %v", r.Runs, r.Interrupted)
	}
	if len(r.Minimal.Faults) == 0 || r.Minimal.Faults[0].Type != scenarios.FaultWALFsyncDelay {
		t.Fatalf("the scenario kept on interrupt does not fail: %v", r.Minimal.Faults)
	}
}

func TestDocumentLoadsAndSaysWhereItCameFrom(t *testing.T) {
	s := builtin(t, "incident-watch-lag")
	runs := 0
	r, err := Shrink(context.Background(), s, Options{Run: fake(scenarios.FaultWALFsyncDelay, time.Second, 1, &runs)})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.Document("scenarios/incident-watch-lag.yaml, seed 1", "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	back, err := scenarios.Parse("min.yaml", doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if back.Name != "incident-watch-lag-shrunk" || back.Backend != "virtual" || back.Seed != 1 || len(back.Faults) != 1 {
		t.Fatalf("loaded %+v", back)
	}
	for _, want := range []string{
		"# Shrunk from: scenarios/incident-watch-lag.yaml, seed 1.\n",
		"# Still fails latency: p99 too high\n",
		"#   driftlab run --backend virtual --seed 1 min.yaml\n",
		"#   - drop fault",
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("header lacks %q:\n%s", want, doc)
		}
	}
}

func TestKindsMaskNamesAndNumbers(t *testing.T) {
	a := Kinds("default/kv-0 never converged: status.readyReplicas=0 but 3 member Pods are Ready; default/kv-1 never converged: status.readyReplicas=1 but 2 member Pods are Ready")
	b := Kinds("default/kv-3 never converged: status.readyReplicas=2 but 4 member Pods are Ready")
	if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
		t.Fatalf("one kind expected: %q, %q", a, b)
	}
	p99 := Kinds("p99 1432.6ms > 1s")
	if p99[0] != "p99 #ms > #s" {
		t.Fatalf("latency kind %q", p99)
	}
	if none := Kinds("no Pod became Ready: nothing was measured"); slices.Contains(none, p99[0]) {
		t.Fatal("nothing measured is the same kind as a slow p99")
	}
}

// A reduction whose run fails the invariant for another reason is not kept.
func TestShrinkDoesNotSlipToAnotherFailure(t *testing.T) {
	s := builtin(t, "incident-watch-lag")
	runs := 0
	run := func(ctx context.Context, s *scenarios.Scenario) (*backend.Verdict, error) {
		runs++
		detail := "p99 1500.0ms > 1s"
		if len(s.Faults) < 2 {
			detail = "no Pod became Ready: nothing was measured" // fails too, for another reason
		}
		return &backend.Verdict{Summary: &report.Summary{Invariants: []invariant.Result{{Name: invariant.LatencySLO, Detail: detail}}}}, nil
	}
	r, err := Shrink(context.Background(), s, Options{Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Minimal.Faults) != 2 || r.Detail != "p99 1500.0ms > 1s" {
		t.Fatalf("slipped: %d faults, %q", len(r.Minimal.Faults), r.Detail)
	}
}

// An explicit operation list is shrunk by dropping operations (never to
// none, which would mean a generated workload), and the generator's
// settings are left alone.
func TestShrinkExplicitOperations(t *testing.T) {
	s, err := scenarios.Parse("ops.yaml", []byte(`name: ops
workload:
  duration: 10s
  operations:
    - {at: 0s, op: create, name: kv-a, replicas: 1}
    - {at: 0s, op: create, name: kv-b, replicas: 2}
    - {at: 1s, op: scale, name: kv-a, replicas: 3}
    - {at: 2s, op: annotate, name: kv-b, value: x}
    - {at: 3s, op: scale, name: kv-a, replicas: 5}
    - {at: 4s, op: scale, name: kv-b, replicas: 0}
    - {at: 6s, op: delete, name: kv-b}
    - {at: 9s, op: delete, name: kv-a}
`))
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	run := func(ctx context.Context, s *scenarios.Scenario) (*backend.Verdict, error) {
		runs++
		bad := false
		for _, op := range s.Workload.Operations {
			bad = bad || (op.Op == "scale" && op.Replicas == 5)
		}
		return &backend.Verdict{Summary: &report.Summary{Invariants: []invariant.Result{{Name: invariant.DriftConvergence, Passed: !bad, Detail: "default/kv-a never converged"}}}}, nil
	}
	r, err := Shrink(context.Background(), s, Options{Run: run})
	if err != nil {
		t.Fatal(err)
	}
	ops := r.Minimal.Workload.Operations
	if len(ops) != 1 || ops[0].Replicas != 5 || r.Minimal.Workload.Duration.Duration >= 10*time.Second {
		t.Fatalf("operations %+v over %s", ops, r.Minimal.Workload.Duration)
	}
	if r.Before.Ops != 8 || r.After.Ops != 1 || r.After.Objects != 1 {
		t.Fatalf("before %s, after %s", r.Before, r.After)
	}
	if r.Minimal.Workload.Objects != s.Workload.Objects || r.Minimal.Workload.Annotate != s.Workload.Annotate {
		t.Fatalf("generator settings changed: %+v", r.Minimal.Workload)
	}
	if runs > 40 {
		t.Fatalf("%d runs for 8 operations", runs)
	}
}

// Writing a generated workload as explicit operations is the same run, so
// the shrink can go on dropping single operations.
func TestExplicitOperationsIsTheSameRun(t *testing.T) {
	s := builtin(t, "incident-watch-lag")
	s.Seed = 411
	c := explicitOperations(s)
	if len(c) != 1 || len(c[0].s.Workload.Operations) != Measure(s).Ops {
		t.Fatalf("candidates %v", c)
	}
	e, _, err := normalise(c[0].s)
	if err != nil {
		t.Fatal(err)
	}
	a, err := virtual.Run(s, virtual.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := virtual.Run(e, virtual.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.TraceHash != b.TraceHash {
		t.Fatalf("explicit operations changed the run: %s vs %s", a.TraceHash, b.TraceHash)
	}
	if explicitOperations(e) != nil {
		t.Fatal("an explicit workload offered again")
	}
}

package matrix

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// fakeRunner fails the listed invariants for seeds >= failFrom (0: never).
func fakeRunner(failFrom uint64, failed ...string) runner {
	return func(_ context.Context, s *scenarios.Scenario, _ string) (*report.Summary, error) {
		sum := &report.Summary{Scenario: s.Name, Seed: s.Seed}
		for _, n := range append(slices.Clone(Judged), "faults") {
			passed := !(failFrom > 0 && s.Seed >= failFrom && slices.Contains(failed, n))
			sum.Invariants = append(sum.Invariants, invariant.Result{Name: n, Passed: passed, Detail: n + " detail"})
		}
		return sum, nil
	}
}

func TestJudgedFor(t *testing.T) {
	if got := JudgedFor("baseline"); !slices.Equal(got, Judged) {
		t.Fatalf("baseline judged on %v", got)
	}
	if got := JudgedFor("incident-watch-lag"); !slices.Equal(got, []string{invariant.DriftConvergence, invariant.DriftStaleness}) {
		t.Fatalf("incident-watch-lag judged on %v: its latency SLO fails by design", got)
	}
	if got := JudgedFor("withheld-pod-events"); !slices.Equal(got, []string{invariant.DriftConvergence}) {
		t.Fatalf("withheld-pod-events judged on %v", got)
	}
	for name := range ExpectedFailures {
		if _, err := scenarios.Builtin(name); err != nil {
			t.Errorf("ExpectedFailures names a scenario that is not built in: %v", err)
		}
	}
	for name := range LocalOnly {
		if _, err := scenarios.Builtin(name); err != nil {
			t.Errorf("LocalOnly names a scenario that is not built in: %v", err)
		}
	}
}

func TestFillCell(t *testing.T) {
	base := &scenarios.Scenario{Name: "baseline", Seed: 10, Operator: scenarios.Operator{Cache: "map"}}
	ctx := context.Background()

	// A bug is caught at the first failing seed, and the search stops.
	c := &Cell{Bug: "freeze-status", Cache: "map", Scenario: "baseline"}
	if n := fillCell(ctx, c, base, 100, BackendVirtual, fakeRunner(13, invariant.DriftConvergence)); n != 4 {
		t.Fatalf("ran %d seeds, want 4 (10..13)", n)
	}
	if c.CaughtAfter != 4 || c.Seed != 13 || !slices.Equal(c.Invariants, []string{invariant.DriftConvergence}) || c.Violations != 0 {
		t.Fatalf("cell %+v", c)
	}
	if !strings.Contains(c.Command, "--seed 13") || !strings.Contains(c.Command, "freeze-status") {
		t.Fatalf("replay command %q", c.Command)
	}

	// The faults check and expected failures never count.
	c = &Cell{Bug: "freeze-status", Cache: "map", Scenario: "baseline"}
	fillCell(ctx, c, base, 5, BackendVirtual, fakeRunner(1, "faults"))
	if c.CaughtAfter != 0 || c.Seeds != 5 {
		t.Fatalf("a failed faults check caught a bug: %+v", c)
	}
	inc := &scenarios.Scenario{Name: "incident-watch-lag", Seed: 1}
	c = &Cell{Cache: "map", Scenario: inc.Name}
	fillCell(ctx, c, inc, 5, BackendVirtual, fakeRunner(1, invariant.LatencySLO))
	if c.Violations != 0 {
		t.Fatalf("the incident's expected latency failure counted as a violation: %+v", c)
	}

	// The correct operator runs every seed and counts the failing ones,
	// remembering the first.
	c = &Cell{Cache: "arena", Scenario: "baseline"}
	var caches []string
	run := func(ctx context.Context, s *scenarios.Scenario, tag string) (*report.Summary, error) {
		caches = append(caches, s.Operator.Cache)
		if len(s.Operator.Bugs) != 0 {
			t.Errorf("clean run with bugs %v", s.Operator.Bugs)
		}
		return fakeRunner(12, invariant.DriftStaleness)(ctx, s, tag)
	}
	fillCell(ctx, c, base, 5, BackendVirtual, run)
	if c.Violations != 3 || c.Seed != 12 || c.Seeds != 5 || c.CaughtAfter != 0 {
		t.Fatalf("clean cell %+v", c)
	}
	if caches[0] != "arena" {
		t.Fatalf("clean run used cache %q, want the cell's", caches[0])
	}

	// Runs that fail to run are counted, not taken as a verdict.
	c = &Cell{Bug: "x", Cache: "map", Scenario: "baseline"}
	fillCell(ctx, c, base, 3, BackendVirtual, func(context.Context, *scenarios.Scenario, string) (*report.Summary, error) {
		return nil, errors.New("boom")
	})
	if c.Errors != 3 || c.CaughtAfter != 0 || !strings.Contains(c.Err, "boom") {
		t.Fatalf("error cell %+v", c)
	}
}

func TestPrintAndVerdict(t *testing.T) {
	r := &Result{Backend: BackendVirtual, Seeds: 10, Scenarios: []string{"a", "b"},
		Bugs: []BugRow{
			{Bug: "x", Cells: []Cell{{Scenario: "a", CaughtAfter: 3, Seed: 3, Invariants: []string{invariant.DriftConvergence, invariant.LatencySLO}, Detail: "d"}, {Scenario: "b", Seeds: 10}}, Caught: true},
			{Bug: "y", Cells: []Cell{{Scenario: "a", Seeds: 10}, {Scenario: "b", Seeds: 10}}},
		},
		Clean:    []Cell{{Cache: "map", Scenario: "a", Seeds: 10}, {Cache: "map", Scenario: "b", Seeds: 10, Violations: 1, Seed: 4}},
		Uncaught: []string{"y"}, FalseAlarms: 1}
	var b bytes.Buffer
	r.Print(&b)
	out := b.String()
	lines := strings.Split(out, "\n")
	find := func(prefix string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f
			}
		}
		t.Fatalf("no line starting with %q in\n%s", prefix, out)
		return nil
	}
	if f := find("x"); !slices.Equal(f, []string{"x", "3:CL", "-", "yes"}) {
		t.Errorf("row x: %v", f)
	}
	if f := find("y"); !slices.Equal(f, []string{"y", "-", "-", "NO"}) {
		t.Errorf("row y: %v", f)
	}
	if f := find("map"); !slices.Equal(f, []string{"map", "0/10", "1/10"}) {
		t.Errorf("row map: %v", f)
	}
	if r.OK() || !strings.Contains(out, "verdict: FAIL: uncaught bugs [y], 1 false alarms") {
		t.Errorf("verdict wrong:\n%s", out)
	}
	r.Uncaught, r.FalseAlarms = nil, 0
	if !r.OK() {
		t.Error("OK false with nothing uncaught and no false alarm")
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := Run(ctx, Options{Backend: "cluster"}); err == nil {
		t.Error("unknown backend accepted")
	}
	if _, err := Run(ctx, Options{Bugs: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown bug: %v", err)
	}
	if _, err := Run(ctx, Options{Variants: []string{"btree"}}); err == nil || !strings.Contains(err.Error(), "btree") {
		t.Errorf("unknown cache: %v", err)
	}
	if _, err := Run(ctx, Options{Backend: BackendLocal}); err == nil {
		t.Error("local backend without a run directory accepted")
	}
}

// TestBugTheBackendCannotExpressIsNotApplicable: lock-across-io on the
// virtual backend is shown as n/a with the reason, does not run, and does
// not make the matrix fail (it exited 1 by default before).
func TestBugTheBackendCannotExpressIsNotApplicable(t *testing.T) {
	s, err := scenarios.Builtin("baseline")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{Backend: BackendVirtual, Seeds: 2, SkipClean: true,
		Bugs: []string{bugs.LockAcrossIO, bugs.FreezeStatus}, Scenarios: []*scenarios.Scenario{s}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || len(res.Uncaught) != 0 || !slices.Equal(res.NotApplicable, []string{bugs.LockAcrossIO}) {
		t.Fatalf("OK %v, uncaught %v, n/a %v", res.OK(), res.Uncaught, res.NotApplicable)
	}
	if c := res.Bugs[0].Cells[0]; c.Seeds != 0 {
		t.Fatalf("the n/a bug ran %d seeds", c.Seeds)
	}
	var b bytes.Buffer
	res.Print(&b)
	out := b.String()
	if f := strings.Fields(strings.Split(out, "\n")[2]); !slices.Equal(f, []string{bugs.LockAcrossIO, "n/a", "n/a"}) {
		t.Errorf("row lock-across-io: %v\n%s", f, out)
	}
	for _, want := range []string{"lock-across-io: n/a on virtual: a virtual reconcile runs atomically", "every seeded bug the virtual backend can express caught (n/a: lock-across-io)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

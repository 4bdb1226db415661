package tests

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/matrix"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/invariant"
)

func builtins(t *testing.T, names ...string) []*scenarios.Scenario {
	t.Helper()
	var out []*scenarios.Scenario
	for _, n := range names {
		s, err := scenarios.Builtin(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestDetectionMatrixVirtual is `driftlab matrix` at CI size: every seeded
// bug that the virtual backend can show is caught by at least one scenario
// within 40 seeds, by the scenario docs/reference-operator.md names for it, and the
// correct operator with every cache variant raises no violation over 20
// seeds of each scenario. The full size (1,000 seeds per scenario, the
// whole catalogue) runs from the command.
func TestDetectionMatrixVirtual(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 4,000 virtual runs; skipped with -short")
	}
	// Every bug: lock-across-io needs real concurrency
	// (TestDetectionMatrixLocal) and is n/a here, not uncaught.
	res, err := matrix.Run(context.Background(), matrix.Options{
		// CleanSeeds = Seeds: every seed that can catch a bug also runs clean.
		Backend: matrix.BackendVirtual, Seeds: 40, CleanSeeds: 40,
		Scenarios: builtins(t, "baseline", "stale-reads", "withheld-pod-events", "operator-crash", "incident-watch-lag"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.Print(&out)
	t.Log("\n" + out.String())
	if !res.OK() {
		t.Fatalf("matrix failed: uncaught %v, %d false alarms, %d run errors", res.Uncaught, res.FalseAlarms, res.RunErrors)
	}
	// Where each bug must be caught (docs/reference-operator.md "Seeded bugs"), and by what.
	want := map[string]struct{ scenario, invariant string }{
		bugs.FreezeStatus:         {"baseline", invariant.DriftConvergence},
		bugs.NoEnqueueOnPodUpdate: {"baseline", invariant.LatencySLO},
		bugs.GenerationPredicate:  {"baseline", invariant.LatencySLO},
		bugs.StaleOverwrite:       {"stale-reads", invariant.DriftConvergence},
		bugs.NoRequeueOnConflict:  {"stale-reads", invariant.DriftConvergence},
		bugs.StatusUpdateClobber:  {"stale-reads", invariant.DriftConvergence},
		bugs.DropTombstone:        {"withheld-pod-events", invariant.DriftConvergence},
	}
	if !slices.Equal(res.NotApplicable, []string{bugs.LockAcrossIO}) {
		t.Errorf("not applicable on virtual: %v, want [%s]", res.NotApplicable, bugs.LockAcrossIO)
	}
	for _, row := range res.Bugs {
		if row.NotApplicable != "" {
			continue
		}
		w, ok := want[row.Bug]
		if !ok {
			t.Errorf("bug %s has no expected scenario in this test", row.Bug)
			continue
		}
		for _, c := range row.Cells {
			if c.Scenario == w.scenario && (c.CaughtAfter == 0 || !slices.Contains(c.Invariants, w.invariant)) {
				t.Errorf("%s on %s: caught after %d seeds by %v, want caught by %s", row.Bug, c.Scenario, c.CaughtAfter, c.Invariants, w.invariant)
			}
		}
	}
	// The clean check covered every variant on every scenario.
	if len(res.Clean) != 5*5 {
		t.Errorf("%d clean cells, want 25", len(res.Clean))
	}
	for _, c := range res.Clean {
		if c.Seeds != 40 {
			t.Errorf("clean %s on %s ran %d seeds", c.Cache, c.Scenario, c.Seeds)
		}
	}
}

// TestDetectionMatrixLocal is the local part: lock-across-io needs real
// concurrency (four reconcile workers, a slow API server), so it is caught
// on the local backend by slow-apiserver's latency SLO, which the correct
// operator meets on the same scenario and seed.
func TestDetectionMatrixLocal(t *testing.T) {
	needControlPlane(t)
	res, err := matrix.Run(context.Background(), matrix.Options{
		Backend: matrix.BackendLocal, Seeds: 1, Bugs: []string{bugs.LockAcrossIO}, Variants: []string{"map"},
		Scenarios: builtins(t, "slow-apiserver"), Dir: runDir(t, "matrix-local"), Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.Print(&out)
	t.Log("\n" + out.String())
	if !res.OK() {
		t.Fatalf("local matrix failed: uncaught %v, %d false alarms, %d run errors", res.Uncaught, res.FalseAlarms, res.RunErrors)
	}
	if c := res.Bugs[0].Cells[0]; !slices.Contains(c.Invariants, invariant.LatencySLO) {
		t.Errorf("lock-across-io caught by %v, want latency", c.Invariants)
	}
}

package tests

import (
	"os"
	"testing"

	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/lab"
	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/report"
)

// reference is the reference operator as the harness runs it for s.
func reference(t testing.TB, s *scenarios.Scenario) *harness.System {
	t.Helper()
	sys, err := operator.System(s)
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

// runReference runs s against the reference operator through package lab,
// as a user's tests run theirs: on the shared plane, or on a plane of its
// own when s's faults need one. A run that could not be carried out fails
// the test; the summary is logged, and a failed run's bundle is kept.
func runReference(t *testing.T, s *scenarios.Scenario) *report.Summary {
	t.Helper()
	needControlPlane(t)
	out := lab.Shared(t).Run(t, s, reference(t, s))
	t.Log(out.Explain())
	if out.Err != nil {
		t.Fatalf("run failed: %v", out.Err)
	}
	return out.Summary
}

// TestMain lets this test binary act as `driftlab operator ...` when the
// harness re-executes it (it sets DRIFTLAB_OPERATOR_CHILD=1), and runs the
// tests with one shared control plane (lab.Main).
func TestMain(m *testing.M) {
	if os.Getenv("DRIFTLAB_OPERATOR_CHILD") == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	lab.Main(m, lab.Options{})
}

package tests

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/lab"
	"github.com/driftlab/driftlab/operator/bugs"
)

// TestLabBaselineOnTheSharedPlane: the reference operator, as any user's
// operator is tested with package lab: the built-in baseline passes on
// the shared plane, in a namespace of its own, and the run says which
// operator and subject it tested.
func TestLabBaselineOnTheSharedPlane(t *testing.T) {
	s := lab.Load(t, "baseline")
	out := lab.Shared(t).Run(t, s, reference(t, s))
	if !out.Passed() {
		t.Fatal(out.Explain())
	}
	if sum := out.Summary; !strings.Contains(sum.Operator, "reference operator") || !strings.Contains(sum.Subject, "KVCluster") {
		t.Fatalf("summary names operator %q and subject %q", sum.Operator, sum.Subject)
	}
	t.Log(out.Explain())
}

// TestLabBrokenOperatorFails: the same scenario with a seeded bug fails
// its drift invariant, and the outcome keeps the bundle and report.
func TestLabBrokenOperatorFails(t *testing.T) {
	s := lab.Load(t, "baseline")
	s.Operator.Bugs = []string{bugs.FreezeStatus}
	out := lab.Shared(t).Run(t, s, reference(t, s))
	if out.Passed() || !out.Failed("drift-convergence") {
		t.Fatalf("the freeze-status operator was not caught:\n%s", out.Explain())
	}
	if out.Dir == "" || out.Report == "" || !strings.Contains(out.Explain(), "drift-convergence FAILED") {
		t.Fatalf("a failed run keeps its bundle and report: %s", out.Explain())
	}
}

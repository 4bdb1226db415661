package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/report"
)

// runVirtualChild runs `driftlab run --backend virtual` in a new process
// (this test binary re-executed as the CLI, see TestMain) and returns its
// summary.json.
func runVirtualChild(t *testing.T, scenario string, seed, dir string) *report.Summary {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--backend", "virtual", "--seed", seed, "-q", "--out", dir, scenario)
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: an invariant failed
		t.Fatalf("driftlab run %s: %v\n%s", scenario, err, out)
	}
	sum, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return sum
}

// TestVirtualDeterministicAcrossProcesses: the same scenario and seed run
// in two separate processes, and in this one, give the same trace_hash —
// with and without faults — and another seed gives another hash.
func TestVirtualDeterministicAcrossProcesses(t *testing.T) {
	for _, name := range []string{"baseline", "incident-watch-lag"} {
		dir := t.TempDir()
		a := runVirtualChild(t, name, "7", filepath.Join(dir, "a"))
		b := runVirtualChild(t, name, "7", filepath.Join(dir, "b"))
		c := runVirtualChild(t, name, "8", filepath.Join(dir, "c"))
		if a.TraceHash == "" || a.TraceHash != b.TraceHash {
			t.Fatalf("%s seed 7: two processes gave trace hashes %q and %q", name, a.TraceHash, b.TraceHash)
		}
		if c.TraceHash == a.TraceHash {
			t.Fatalf("%s: seeds 7 and 8 gave the same trace hash", name)
		}
		s, err := scenarios.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		s.Seed = 7
		res, err := virtual.Run(s, virtual.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.TraceHash != a.TraceHash {
			t.Fatalf("%s seed 7: in-process hash %s, child processes %s", name, res.TraceHash, a.TraceHash)
		}
		t.Logf("%s seed 7: trace_hash %s in three processes", name, a.TraceHash)
	}
}

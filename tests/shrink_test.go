package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/shrink"
	"github.com/driftlab/driftlab/sim/sweep"
	"github.com/driftlab/driftlab/sim/workload"
)

// driftlab runs the CLI in this process.
func driftlab(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// latencyFailure runs s on the virtual backend and returns the latency
// invariant's detail when it fails.
func latencyFailure(t *testing.T, s *scenarios.Scenario) (string, bool) {
	t.Helper()
	r, err := virtual.Run(s, virtual.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.Summary.Invariants {
		if x.Name == invariant.LatencySLO {
			return x.Detail, !x.Passed
		}
	}
	t.Fatal("no latency invariant in the summary")
	return "", false
}

// The incident under swarm testing on the virtual backend: a sweep finds a
// seed whose fault subset makes the latency SLO fail; driftlab shrink cuts
// that run down to a scenario file with fewer faults and fewer operations
// that still fails the SLO the same way, and whose remaining faults are
// each needed.
func TestShrinkFailingSwarmRun(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "sweep.json")
	code, out, stderr := driftlab(t, "sweep", "--backend", "virtual", "--seeds", "40", "--swarm", "--json", js, "incident-watch-lag")
	if code != cli.ExitFailed {
		t.Fatalf("swarm sweep of the incident: exit %d\n%s\n%s", code, out, stderr)
	}
	var res sweep.Result
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	var pick *sweep.Failure
	for i, f := range res.Failures {
		if len(f.FaultsOn) >= 2 && slices.Contains(f.Invariants, invariant.LatencySLO) {
			pick = &res.Failures[i]
			break
		}
	}
	if pick == nil {
		t.Fatalf("no swarm run with 2 or more faults on failed the latency SLO in 40 seeds:\n%s", out)
	}
	orig, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	swarmRun, _ := sweep.Swarm(orig, pick.Seed)
	file := filepath.Join(dir, "min.yaml")
	seed := strconv.FormatUint(pick.Seed, 10)
	code, out, stderr = driftlab(t, "shrink", "--seed", seed, "--swarm", "--invariant", invariant.LatencySLO, "--out", file, "incident-watch-lag")
	t.Logf("seed %d (%s):\n%s", pick.Seed, pick.Subset, out)
	if code != cli.ExitOK {
		t.Fatalf("shrink: exit %d\n%s\n%s", code, out, stderr)
	}
	if want := "replay: driftlab run --backend virtual --seed " + seed + " " + file; !strings.Contains(out, want) {
		t.Fatalf("no replay command %q in:\n%s", want, out)
	}
	if n := strings.Count(stderr, "shrink: run "); n < 5 {
		t.Fatalf("%d progress lines:\n%s", n, stderr)
	}
	min, err := scenarios.Load(file) // the strict decoder
	if err != nil {
		t.Fatal(err)
	}
	if min.Seed != pick.Seed || min.Backend != "virtual" {
		t.Fatalf("written scenario has seed %d, backend %s", min.Seed, min.Backend)
	}
	before, after := len(workload.Generate(swarmRun.Workload, pick.Seed, "kv-")), len(workload.Generate(min.Workload, min.Seed, "kv-"))
	if len(min.Faults) >= len(swarmRun.Faults) || after >= before {
		t.Fatalf("not reduced: %d faults and %d operations, from %d and %d", len(min.Faults), after, len(swarmRun.Faults), before)
	}
	origDetail, failed := latencyFailure(t, swarmRun)
	if !failed {
		t.Fatal("the swarm run does not fail")
	}
	detail, failed := latencyFailure(t, min)
	if !failed || !shrink.SameFailure(origDetail, detail) {
		t.Fatalf("the minimal scenario does not fail the same way: %q (the swarm run: %q)", detail, origDetail)
	}
	// Each fault left is needed: without it the SLO holds, or fails for
	// another reason.
	for i := range min.Faults {
		without := *min
		without.Faults = slices.Delete(slices.Clone(min.Faults), i, i+1)
		if d, failed := latencyFailure(t, &without); failed && shrink.SameFailure(origDetail, d) {
			t.Errorf("fault [%d] %s is not needed: without it latency still fails (%s)", i, min.Faults[i].Describe(), d)
		}
	}
}

package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/shrink"
	"github.com/driftlab/driftlab/sim/sweep"
)

// brokenIncident writes the incident scenario with the freeze-status bug.
func brokenIncident(t *testing.T) string {
	t.Helper()
	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	s.Name = "broken-incident"
	s.Operator.Bugs = []string{"freeze-status"}
	b, err := scenarios.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSweepSwarmReportAndReplay(t *testing.T) {
	p := brokenIncident(t)
	js := filepath.Join(t.TempDir(), "sweep.json")
	code, out, stderr := run("sweep", "--backend", "virtual", "--seeds", "6", "--swarm", "--show", "2", "--json", js, p)
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"6 runs of broken-incident (shard 0/1, swarm)",
		"failing seeds by invariant: drift-convergence 6",
		"swarm: failing runs with each fault on / off",
		"FAIL seed 1: drift-convergence",
		"    replay: driftlab run --backend virtual --seed 1 --swarm " + p,
		"    shrink: driftlab shrink --seed 1 --swarm " + p,
		"... and 4 more failing seeds",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sweep output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "6/6 seeds, 6 failing") {
		t.Errorf("progress: %q", stderr)
	}
	// run --swarm replays the seed with the same faults as the sweep.
	s, _ := scenarios.Load(p)
	for seed := uint64(1); seed <= 3; seed++ {
		sub, on := sweep.Swarm(s, seed)
		dir := t.TempDir()
		code, _, stderr := run("run", "--backend", "virtual", "--seed", strconv.FormatUint(seed, 10), "--swarm", "-q", "--out", dir, p)
		if code != ExitFailed {
			t.Fatalf("seed %d: exit %d\n%s", seed, code, stderr)
		}
		sum, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Faults) != len(sub.Faults) || !strings.Contains(stderr, sweep.DescribeSubset(s, on)) {
			t.Fatalf("seed %d: run --swarm ran %d faults, the sweep %d (%s)\n%s", seed, len(sum.Faults), len(sub.Faults), sweep.DescribeSubset(s, on), stderr)
		}
	}
}

func TestShrinkCommand(t *testing.T) {
	p := brokenIncident(t)
	out := filepath.Join(t.TempDir(), "sub", "min.yaml")
	code, stdout, stderr := run("shrink", "--seed", "2", "--swarm", "--out", out, p)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"shrunk " + p + " (scenario broken-incident), seed 2, with --swarm: ", "still fails drift-convergence: ",
		"checked: replaying it fails drift-convergence again", "replay: driftlab run --backend virtual --seed 2 " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "shrink: run 1/500: broken-incident seed 2 as given: fails drift-convergence") {
		t.Errorf("no progress lines: %s", stderr)
	}
	min, err := scenarios.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if min.Name != "broken-incident-shrunk" || min.Seed != 2 || min.Workload.Objects > 4 {
		t.Fatalf("minimal scenario %+v", min)
	}
	// The written file fails when run as the output says.
	if code, _, _ := run("run", "--backend", "virtual", "--seed", "2", "-q", "--out", t.TempDir(), out); code != ExitFailed {
		t.Fatalf("replaying %s: exit %d", out, code)
	}
	// A passing scenario: nothing to shrink, exit 2, no file.
	nothing := filepath.Join(t.TempDir(), "none.yaml")
	code, stdout, _ = run("shrink", "--out", nothing, "baseline")
	if code != ExitUsage || !strings.Contains(stdout, "nothing to shrink: scenario baseline passes every invariant with seed 1") {
		t.Fatalf("baseline: exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(nothing); !os.IsNotExist(err) {
		t.Fatalf("a file was written for a passing scenario: %v", err)
	}
	if code, _, stderr := run("shrink", "--invariant", "nope", p); code != ExitUsage || !strings.Contains(stderr, `no invariant "nope"`) {
		t.Fatalf("unknown invariant: exit %d, %s", code, stderr)
	}
}

// A failing run's directory can be shrunk directly: its scenario.yaml holds
// the seed and, after run --swarm, the fault subset.
func TestShrinkARunDirectory(t *testing.T) {
	p := brokenIncident(t)
	dir := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := run("run", "--backend", "virtual", "--seed", "3", "--swarm", "-q", "--out", dir, p); code != ExitFailed {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	ran, err := scenarios.Load(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "min.yaml")
	code, stdout, stderr := run("shrink", "-q", "--out", out, dir)
	if code != ExitOK || !strings.Contains(stdout, "shrunk the run in "+dir+" (scenario broken-incident), seed 3") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "before: "+shrink.Measure(ran).String()) {
		t.Fatalf("did not start from the run's scenario (%s):\n%s", shrink.Measure(ran), stdout)
	}
	if code, _, stderr := run("shrink", "--swarm", dir); code != ExitUsage || !strings.Contains(stderr, "drop --swarm") {
		t.Fatalf("--swarm with a run directory: exit %d, %s", code, stderr)
	}
}

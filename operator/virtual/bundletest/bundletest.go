package bundletest

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
)

// Expectation is what a replay must show.
type Expectation int

const (
	// Reproduces: every invariant has its recorded result (the incident
	// still happens).
	Reproduces Expectation = iota
	// Fixed: the recorded run failed, and the replay passes every invariant.
	Fixed
)

// Options configure Replay.
type Options struct {
	// Expect is what the replay must show; default Reproduces.
	Expect Expectation
	// Modify, when set, changes the resolved scenario before the replay
	// (for example to switch off a seeded bug, standing in for a fix).
	Modify func(*scenarios.Scenario)
	// Out, when set, receives the replay's history and summary.
	Out string
}

// Replay replays the bundle in dir on the virtual backend and checks the
// expectation; it returns the replay's result and the comparison.
func Replay(t testing.TB, dir string, o Options) (*virtual.Result, *bundle.Comparison) {
	t.Helper()
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatalf("bundletest: %v", err)
	}
	if b.Manifest.Status != bundle.StatusComplete {
		t.Fatalf("bundletest: %s is %s: only a complete bundle has an outcome to reproduce", dir, b.Manifest.Status)
	}
	if b.Manifest.Backend != virtual.Backend {
		t.Fatalf("bundletest: %s was recorded on the %s backend; bundletest replays virtual bundles (driftlab replay replays the others)", dir, b.Manifest.Backend)
	}
	s, err := b.Scenario()
	if err != nil {
		t.Fatalf("bundletest: %v", err)
	}
	recorded, err := b.Summary()
	if err != nil {
		t.Fatalf("bundletest: %v", err)
	}
	if o.Modify != nil {
		o.Modify(s)
	}
	res, err := virtual.Run(s, virtual.Options{Dir: o.Out})
	if err != nil {
		t.Fatalf("bundletest: replaying %s: %v", dir, err)
	}
	c := bundle.Compare(recorded, res.Summary)
	var table strings.Builder
	c.Print(&table)
	switch o.Expect {
	case Reproduces:
		if !c.SameVerdict() {
			t.Fatalf("bundletest: %s no longer reproduces (scenario %s, seed %d):\n%s", dir, s.Name, s.Seed, table.String())
		}
		if c.TraceHashesCompared && !c.TraceHashMatches {
			if now := bundle.CurrentVersions("").Driftlab; now == b.Manifest.Versions.Driftlab && !strings.Contains(now, "dirty") {
				t.Fatalf("bundletest: %s: same driftlab commit, different trace hash (the virtual backend is not deterministic):\n%s", dir, table.String())
			}
			t.Logf("bundletest: %s: trace hash differs from the recording (recorded by driftlab %s, now %s): the model changed; the verdicts are the same",
				dir, b.Manifest.Versions.Driftlab, bundle.CurrentVersions("").Driftlab)
		}
	case Fixed:
		if recorded.Passed {
			t.Fatalf("bundletest: %s recorded a passing run: nothing to fix", dir)
		}
		if !res.Summary.Passed {
			t.Fatalf("bundletest: %s still fails:\n%s", dir, table.String())
		}
	}
	return res, c
}

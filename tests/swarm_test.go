package tests

import (
	"testing"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/sweep"
)

// A swarm sweep of the incident scenario on the virtual backend finds
// failures that the baseline does not, including runs that fail with a
// single fault on, and its per-fault figures point at a culprit: a fault
// whose runs fail far more often with it on than off. The sweep without
// swarm fails with every fault on and cannot tell them apart.
func TestSwarmSweepOfTheIncident(t *testing.T) {
	load := func(name string) *scenarios.Scenario {
		s, err := scenarios.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const seeds = 60
	base := sweep.Run(load("baseline"), sweep.Options{Run: virtual.Verdict, Seeds: seeds, Swarm: true})
	if len(base.Failures) != 0 {
		t.Fatalf("baseline failed: %+v", base.Failures[0])
	}
	inc := load("incident-watch-lag")
	r := sweep.Run(inc, sweep.Options{Run: virtual.Verdict, Seeds: seeds, Swarm: true})
	t.Logf("swarm: %d of %d seeds failed, by invariant %v", len(r.Failures), r.Runs, r.ByInvariant)
	if len(r.Failures) == 0 {
		t.Fatal("the swarm sweep of the incident found no failure")
	}
	single := 0
	for _, f := range r.Failures {
		if len(f.FaultsOn) == 1 {
			single++
		}
	}
	if single == 0 {
		t.Error("no failing run with a single fault on")
	}
	best, bestGap := -1, 0.0
	for _, st := range r.Swarm {
		if st.On == 0 || st.Off == 0 {
			t.Fatalf("fault %d never on or never off in %d seeds: %+v", st.Index, seeds, st)
		}
		gap := float64(st.FailedOn)/float64(st.On) - float64(st.FailedOff)/float64(st.Off)
		t.Logf("  [%d] %s: failing %d/%d on, %d/%d off", st.Index, st.Fault, st.FailedOn, st.On, st.FailedOff, st.Off)
		if gap > bestGap {
			best, bestGap = st.Index, gap
		}
	}
	if bestGap < 0.3 {
		t.Fatalf("no fault stands out: the largest on/off failure-rate gap is %.2f", bestGap)
	}
	t.Logf("culprit: [%d] %s (gap %.2f)", best, sweep.Describe(&inc.Faults[best]), bestGap)
	// Without swarm every run has every fault on.
	plain := sweep.Run(inc, sweep.Options{Run: virtual.Verdict, Seeds: 10})
	for _, f := range plain.Failures {
		if f.FaultsOn != nil {
			t.Fatalf("plain sweep reports a subset: %+v", f)
		}
	}
}

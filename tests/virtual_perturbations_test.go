package tests

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/virtual"
)

// perturbationScenarios are the virtual-only perturbation scenarios in
// sim/virtual/testdata.
var perturbationScenarios = []string{"stale-read", "withhold-events", "crash-restart"}

// TestPerturbationsSkippedOnLocal: the Sieve perturbations have no
// mechanism on a real control plane: the local backend's fault table
// reports each as skipped with a reason, and a skipped fault fails the
// run's "faults" check, never passes.
func TestPerturbationsSkippedOnLocal(t *testing.T) {
	for _, name := range perturbationScenarios {
		s, err := scenarios.Load("../sim/virtual/testdata/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !scenarios.FaultTypes[s.Faults[0].Type].VirtualOnly {
			t.Errorf("%s is not marked virtual-only", s.Faults[0].Type)
		}
		built, skipped, err := faults.Build(s.Faults, faults.NewPlan(1))
		if err != nil {
			t.Fatal(err)
		}
		reason, ok := skipped[0]
		if !ok || len(built) != 0 || !strings.Contains(reason, s.Faults[0].Type) {
			t.Fatalf("%s on the local backend: built %v, skipped %v", name, built, skipped)
		}
		if r := report.FaultsCheck([]report.FaultResult{{Type: s.Faults[0].Type, Skipped: reason}}); r.Passed {
			t.Fatalf("%s: a skipped perturbation passed the faults check", name)
		}
	}
}

// TestPerturbationsOnVirtual: on the virtual backend each perturbation
// runs (an effect, the faults check passes), the correct operator still
// converges, and the run replays to the same trace hash.
func TestPerturbationsOnVirtual(t *testing.T) {
	for _, name := range perturbationScenarios {
		for seed := uint64(1); seed <= 3; seed++ {
			hashes := map[string]bool{}
			for range 2 {
				s, err := scenarios.Load("../sim/virtual/testdata/" + name + ".yaml")
				if err != nil {
					t.Fatal(err)
				}
				s.Seed = seed
				res, err := virtual.Run(s, virtual.Options{})
				if err != nil {
					t.Fatal(err)
				}
				hashes[res.TraceHash] = true
				f := res.Summary.Faults[0]
				if f.Skipped != "" || f.Error != "" || len(f.Effect) == 0 {
					t.Fatalf("%s seed %d: %+v", name, seed, f)
				}
				for _, r := range res.Summary.Invariants {
					if (r.Name == "faults" || r.Name == "drift-convergence") && !r.Passed {
						t.Errorf("%s seed %d: %s: %s", name, seed, r.Name, r.Detail)
					}
				}
			}
			if len(hashes) != 1 {
				t.Fatalf("%s seed %d: two runs, two trace hashes", name, seed)
			}
		}
	}
}

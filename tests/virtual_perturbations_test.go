package tests

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/report"
)

// perturbationScenarios are the virtual-only perturbation scenarios in
// operator/virtual/testdata.
var perturbationScenarios = []string{"stale-read", "withhold-events", "crash-restart"}

// TestPerturbationsSkippedOnLocal: the Sieve perturbations have no
// mechanism on a real control plane: the local backend's fault table
// reports each as skipped with a reason, and a skipped fault fails the
// run's "faults" check, never passes.
func TestPerturbationsSkippedOnLocal(t *testing.T) {
	for _, name := range perturbationScenarios {
		s, err := scenarios.Load("../operator/virtual/testdata/" + name + ".yaml")
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
				s, err := scenarios.Load("../operator/virtual/testdata/" + name + ".yaml")
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
				if f.Skipped != "" || f.Error != "" || !effectShown(f) {
					t.Fatalf("%s seed %d: no measured effect: %+v", name, seed, f)
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

// effectKey is, per fault type, the effect counter of the virtual backend
// that is zero unless the fault really acted in its window.
var effectKey = map[string]string{
	scenarios.FaultWALFsyncDelay:     "fsyncs_delayed",
	scenarios.FaultNetworkRetransmit: "retransmits",
	scenarios.FaultWatcherExhaustion: "lock_held_ms_per_sync",
	scenarios.FaultGCAssistPressure:  "gc_pauses",
	scenarios.FaultStaleRead:         "stale_reads",
	scenarios.FaultWithholdEvents:    "events_withheld",
	scenarios.FaultCrashRestart:      "crashes",
}

// effectShown reports whether a virtual fault's result shows it acted. A
// network fault with latency but no loss (slow-apiserver) shows by the
// traffic it delayed rather than by retransmits.
func effectShown(f report.FaultResult) bool {
	if f.Type == scenarios.FaultNetworkRetransmit && f.Effect["retransmits"] == 0 && f.Effect["loss_rate"] == 0 {
		return f.Effect["chunks"] > 0
	}
	k, ok := effectKey[f.Type]
	return ok && f.Effect[k] > 0
}

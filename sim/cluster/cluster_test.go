package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/chaos"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
)

// TestLoadChaosRoundTripAndCoverage: the export of the incident scenario
// loads back into its objects, and their annotations say which faults they
// inject (all four).
func TestLoadChaosRoundTripAndCoverage(t *testing.T) {
	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	e, err := chaos.Build(s, chaos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.YAML()
	p := filepath.Join(t.TempDir(), "chaos.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := LoadChaos(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "Workflow" || objs[1].GetKind() != "Job" {
		t.Fatalf("loaded %d objects", len(objs))
	}
	cov, err := covered(objs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Faults {
		if !cov[i] {
			t.Errorf("fault %d not covered", i)
		}
	}
}

func TestLoadChaosBadInputNamesFileAndDocument(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("# c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadChaos(p); err == nil || !strings.Contains(err.Error(), p+": document 2") {
		t.Errorf("err = %v, want it to name %s and document 2", err, p)
	}
	if err := os.WriteFile(p, []byte("apiVersion: v1\nkind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadChaos(p); err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("err = %v, want a missing name", err)
	}
}

// TestFaultsWithoutChaosAreSkipped: the cluster backend injects nothing
// itself, so a fault without chaos objects is skipped (and fails the faults
// check), one the objects do not cover too; a covered one has its window.
func TestFaultsWithoutChaosAreSkipped(t *testing.T) {
	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	recs := []history.Record{
		{T: 2e9, Source: history.SourceHarness, Kind: history.KindFaultStart, Op: s.Faults[0].Type, Detail: "0"},
		{T: 25e9, Source: history.SourceHarness, Kind: history.KindFaultStop, Op: s.Faults[0].Type, Detail: "0"},
		{T: 40e9, Source: history.SourceHarness, Kind: history.KindRunEnd},
	}
	out := invariant.Check(recs, s.Invariants)
	none := faultResults(s, false, nil, out)
	for _, f := range none {
		if !strings.Contains(f.Skipped, "--chaos") {
			t.Errorf("fault %d without chaos: skipped %q", f.Index, f.Skipped)
		}
	}
	some := faultResults(s, true, map[int]bool{0: true}, out)
	if some[0].Skipped != "" || some[0].Window == nil || some[0].Window.StartMs != 2000 || some[0].Window.EndMs != 25000 {
		t.Errorf("covered fault: %+v", some[0])
	}
	if some[1].Skipped == "" {
		t.Error("an uncovered fault is not skipped")
	}
}

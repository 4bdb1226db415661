package local

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
)

func failpointSpec(name, term string) scenarios.Fault {
	f := scenarios.Fault{Type: scenarios.FaultFailpoint, Name: name, Term: term}
	f.Start.Duration = 5e9
	f.Duration.Duration = 10e9
	return f
}

// TestFailpointFaultSkippedInNormalBuild: the failpoint fault type is in
// the fault table, and in a build without failpoints it is skipped with the
// reason, for both systems.
func TestFailpointFaultSkippedInNormalBuild(t *testing.T) {
	if _, ok := faults.Table[scenarios.FaultFailpoint]; !ok {
		t.Fatal("the failpoint fault type is not in faults.Table")
	}
	specs := []scenarios.Fault{failpointSpec("walBeforeSync", "sleep(50)"), failpointSpec("beforeStatusWrite", "sleep(300)")}
	plan := faults.NewPlan(1)
	plan.OperatorCommands = true
	built, skipped, err := faults.Build(specs, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) > 0 {
		t.Skip("skipped: this is the failpoint build")
	}
	if !strings.Contains(skipped[0], "without etcd gofail failpoints") || !strings.Contains(skipped[1], "without its own failpoints rewritten") {
		t.Errorf("skip reasons: %v", skipped)
	}
}

// TestAddFailpointEffect: the operator's answer to failpoint-disable gives
// the fault its hit count and injected sleep; an error answer becomes the
// fault's error; etcd failpoints are left alone (their effect comes from
// the harness itself).
func TestAddFailpointEffect(t *testing.T) {
	spec := failpointSpec("beforeStatusWrite", "sleep(300)")
	recs := []history.Record{
		{Source: history.SourceOperator, Kind: history.KindRuntime, Detail: failpointTag("start", spec), Metrics: map[string]float64{"failpoint_hits": 0}},
		{Source: history.SourceOperator, Kind: history.KindRuntime, Detail: "start:0", Metrics: map[string]float64{"gc_cycles": 3}},
		{Source: history.SourceOperator, Kind: history.KindRuntime, Detail: failpointTag("stop", spec), Metrics: map[string]float64{"failpoint_hits": 21}},
	}
	var r report.FaultResult
	addFailpointEffect(&r, spec, recs)
	if r.Error != "" || r.Effect["hits"] != 21 || r.Effect["injected_sleep_ms"] != 6300 {
		t.Errorf("effect %v, error %q; want 21 hits, 6300 ms", r.Effect, r.Error)
	}

	recs[0].Err = "operator failpoint beforeStatusWrite: this binary was built without the failpoint rewrite"
	r = report.FaultResult{}
	addFailpointEffect(&r, spec, recs)
	if !strings.Contains(r.Error, "without the failpoint rewrite") {
		t.Errorf("error %q", r.Error)
	}

	other := failpointSpec("beforeStatusWrite", "sleep(100)") // another window: other tags
	r = report.FaultResult{}
	addFailpointEffect(&r, other, recs)
	if r.Effect != nil || r.Error != "" {
		t.Errorf("a record of another window was taken: %v %q", r.Effect, r.Error)
	}

	etcd := failpointSpec("walBeforeSync", "sleep(50)")
	r = report.FaultResult{Effect: map[string]float64{"hits": 7}}
	addFailpointEffect(&r, etcd, recs)
	if r.Effect["hits"] != 7 {
		t.Errorf("etcd failpoint effect changed: %v", r.Effect)
	}
}

package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// A fault the backend could not run never counts as a pass.
func TestSkippedFaultFailsTheRun(t *testing.T) {
	specs := []scenarios.Fault{{Type: scenarios.FaultWALFsyncDelay}, {Type: scenarios.FaultGCAssistPressure}}
	out := invariant.Check(nil, scenarios.Invariants{})
	res := faultResults(specs, map[int]string{0: "no /dev/fuse"}, nil, out, nil, nil)
	if res[0].Skipped != "no /dev/fuse" {
		t.Fatalf("skip reason lost: %+v", res[0])
	}
	r := report.FaultsCheck(res)
	if r.Passed || !strings.Contains(r.Detail, "wal-fsync-delay skipped: no /dev/fuse") {
		t.Fatalf("faults check passed with a skipped fault: %+v", r)
	}
	if r := report.FaultsCheck(nil); !r.Passed {
		t.Fatalf("no faults must pass: %+v", r)
	}
}

func TestRuntimeEffectFromSamples(t *testing.T) {
	recs := []history.Record{
		{Kind: history.KindRuntime, Detail: "start:0", Metrics: map[string]float64{"window_seconds": 5, "gc_assist_cpu_seconds": 0.005, "sched_slow_events": 5}},
		{Kind: history.KindRuntime, Detail: "stop:0", Metrics: map[string]float64{"window_seconds": 10, "gc_assist_cpu_seconds": 0.5, "sched_slow_events": 100}},
	}
	var r report.FaultResult
	addRuntimeEffect(&r, recs, 0)
	if r.Effect["gc_assist_cpu_per_s_before"] != 0.001 || r.Effect["gc_assist_cpu_per_s"] != 0.05 || r.Effect["sched_slow_per_s"] != 10 {
		t.Fatalf("effect %v", r.Effect)
	}
}

func TestDescribeSchedule(t *testing.T) {
	f := scenarios.Fault{Type: "x", Start: scenarios.Duration{Duration: 2 * time.Second}, Duration: scenarios.Duration{Duration: 3 * time.Second}}
	if got := f.Describe(); got != "x from 2s for 3s" {
		t.Fatalf("describe: %q", got)
	}
	f = scenarios.Fault{Type: "x", AfterOps: 7}
	if got := f.Describe(); got != "x after operation 7 until the workload ends" {
		t.Fatalf("describe: %q", got)
	}
}

package shrink

import (
	"context"
	"testing"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
)

// BenchmarkShrinkIncident shrinks a failing swarm-like run of the incident
// (faults [0] and [1] on, seed 4: the latency SLO fails) and reports the
// runs a shrink takes and the reduction it reaches.
func BenchmarkShrinkIncident(b *testing.B) {
	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		b.Fatal(err)
	}
	s.Seed = 4
	s.Faults = s.Faults[:2]
	var r *Result
	for b.Loop() {
		r, err = Shrink(context.Background(), s, Options{Run: virtual.Verdict})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.Runs), "runs/shrink")
	b.ReportMetric(float64(r.Before.Ops)/float64(max(r.After.Ops, 1)), "ops-reduction-x")
	b.ReportMetric(float64(r.Before.Faults-r.After.Faults), "faults-dropped")
}

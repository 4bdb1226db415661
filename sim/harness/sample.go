package harness

import (
	"context"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// SampleInterval is how often the harness samples the control plane's
// metrics (Plane.Sample).
const SampleInterval = time.Second

// samplePlane records a plane-sample every SampleInterval until ctx is
// done. A sample that takes longer than the interval delays the next one
// rather than overlapping it: a slow apiserver must not be scraped twice at
// once.
func samplePlane(ctx context.Context, sample func(context.Context) map[string]float64, record func(history.Record)) {
	tick := time.NewTicker(SampleInterval)
	defer tick.Stop()
	for {
		m := sample(ctx)
		if ctx.Err() != nil {
			return
		}
		record(history.Record{Source: history.SourceHarness, Kind: history.KindPlaneSample, Metrics: m})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

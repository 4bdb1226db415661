package backend

import (
	"context"
	"errors"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/report"
)

// Virtual is the name of the deterministic virtual backend, as a
// scenario's backend field and a bundle's manifest spell it.
const Virtual = "virtual"

// ErrInterrupted is wrapped by the error of a run that its context ended
// before the run's end: the run neither passed nor failed.
var ErrInterrupted = errors.New("interrupted")

// Verdict is what a seed tool needs from one run.
type Verdict struct {
	// Summary is the run's summary.json; its Invariants say what failed.
	Summary *report.Summary
	// SimTime is the simulated time the run covered.
	SimTime time.Duration
	// TraceHash identifies the run's history (the same scenario and seed
	// give the same hash on a deterministic backend).
	TraceHash string
}

// Func runs one scenario with its seed (s.Seed) to a verdict. It returns
// an error wrapping ErrInterrupted when ctx ends the run early, and turns a
// harness bug into an error, so that one seed fails and not the whole
// sweep. It must be safe to call from several goroutines at once.
type Func func(ctx context.Context, s *scenarios.Scenario) (*Verdict, error)

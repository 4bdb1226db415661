package invariant

import (
	"context"
	"fmt"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// PollInterval is how often WaitConverged asks whether the run converged.
const PollInterval = 20 * time.Millisecond

// WaitConverged is how a real-time backend (local, cluster) ends a run once
// its workload is over. It polls converged until it reports true or until
// within has passed, and records a harness "converged" record (with the
// reason in Err when it gave up). It then keeps the run going for settle, to
// catch a status that drifts again. When the run had converged but is out
// of sync when settle ends (a Pod the kubelet made Ready in the last
// moments, not reflected yet), it waits up to within more for the status to
// catch up, so that a run never ends in the middle of a reaction the
// operator cannot yet have made. The virtual backend does the same on its
// clock. An error means ctx ended first.
func WaitConverged(ctx context.Context, converged func() (bool, string), record func(history.Record), within, settle time.Duration) error {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	deadline := time.Now().Add(within)
	reached := false
	for !reached {
		ok, why := converged()
		switch {
		case ok:
			record(history.Record{Source: history.SourceHarness, Kind: history.KindConverged})
			reached = true
		case time.Now().After(deadline):
			record(history.Record{Source: history.SourceHarness, Kind: history.KindConverged, Err: "not converged: " + why})
			settleFor(ctx, settle)
			return ctxErr(ctx, "interrupted")
		}
		if !reached {
			select {
			case <-ctx.Done():
				return ctxErr(ctx, "interrupted while waiting for convergence")
			case <-tick.C:
			}
		}
	}
	if !settleFor(ctx, settle) {
		return ctxErr(ctx, "interrupted")
	}
	catchUp := time.Now().Add(within)
	for {
		if ok, _ := converged(); ok || time.Now().After(catchUp) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctxErr(ctx, "interrupted")
		case <-tick.C:
		}
	}
}

// settleFor waits d or until ctx ends; it reports whether d passed.
func settleFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ctxErr(ctx context.Context, what string) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, ctx.Err())
}

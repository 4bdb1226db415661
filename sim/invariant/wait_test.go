package invariant

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// A run that converged, then went out of sync during the settle period,
// ends only once the status has caught up again.
func TestWaitConvergedWaitsForCatchUp(t *testing.T) {
	var polls atomic.Int32
	var catchUpPolls int32
	var settled atomic.Bool
	converged := func() (bool, string) {
		n := polls.Add(1)
		if n == 1 {
			go func() { time.Sleep(30 * time.Millisecond); settled.Store(true) }()
			return true, ""
		}
		if !settled.Load() {
			return true, ""
		}
		// After the settle period: out of sync for three polls.
		catchUpPolls++
		return catchUpPolls > 3, "a Pod became Ready at the end"
	}
	var recs []history.Record
	err := WaitConverged(context.Background(), converged, func(r history.Record) { recs = append(recs, r) }, time.Minute, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if catchUpPolls != 4 {
		t.Fatalf("returned after %d catch-up polls, want 4 (until in sync again)", catchUpPolls)
	}
	if len(recs) != 1 || recs[0].Kind != history.KindConverged || recs[0].Err != "" {
		t.Fatalf("records %+v, want one converged record", recs)
	}
}

// A run that never converges records why, and does not wait for a catch-up.
func TestWaitConvergedGivesUp(t *testing.T) {
	var recs []history.Record
	err := WaitConverged(context.Background(), func() (bool, string) { return false, "frozen" },
		func(r history.Record) { recs = append(recs, r) }, 60*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Err != "not converged: frozen" {
		t.Fatalf("records %+v", recs)
	}
}

// Cancelling the context ends the wait with an error.
func TestWaitConvergedInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WaitConverged(ctx, func() (bool, string) { return false, "x" }, func(history.Record) {}, time.Minute, time.Minute)
	if err == nil {
		t.Fatal("no error after the context ended")
	}
}

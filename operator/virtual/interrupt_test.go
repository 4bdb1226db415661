package virtual

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
)

// TestContextInterruptsRun: a simulated day cancelled soon after it starts
// ends early with ErrInterrupted, and its directory holds the history
// checked so far and a summary that did not pass and says why.
func TestContextInterruptsRun(t *testing.T) {
	s := baseline(t, 1)
	s.Workload.Duration.Duration = 24 * time.Hour
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the history has reached the file: the run is under way.
	go func() {
		for ctx.Err() == nil {
			if st, err := os.Stat(filepath.Join(dir, "history.jsonl")); err == nil && st.Size() > 1<<20 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	res, err := Run(s, Options{Dir: dir, Context: ctx})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err %v, want ErrInterrupted", err)
	}
	if res == nil || res.SimTime >= s.Workload.Duration.Duration {
		t.Fatalf("the run was not cut short: %+v", res)
	}
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := history.Read(f)
	if err != nil || len(recs) < 1000 {
		t.Fatalf("history.jsonl: %d records, %v", len(recs), err)
	}
	if last := recs[len(recs)-1]; last.Kind == history.KindRunEnd || last.T > res.SimTime {
		t.Fatalf("the last record %+v is past the interruption at %v", last, res.SimTime)
	}
	sum, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Passed || sum.Error == "" {
		t.Fatalf("summary of the interrupted run: passed %v, error %q", sum.Passed, sum.Error)
	}
}

package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// Outcome is what one run gave: its summary (summary.json), where its
// bundle is, and the error of a run that could not be carried out.
type Outcome struct {
	// Summary is the run's result; nil only when the run could not start.
	Summary *report.Summary
	// Dir is the run's bundle. A passing run's is removed when its test
	// ends (unless the test failed or the plane keeps runs).
	Dir string
	// Report is report.html of a failed run.
	Report string
	// Err is the error of the run itself (not of an invariant).
	Err error
	// Wall is how long the run took.
	Wall time.Duration
}

// Passed reports whether the run was carried out and every invariant,
// and the faults check, passed.
func (o *Outcome) Passed() bool { return o.Err == nil && o.Summary != nil && o.Summary.Passed }

// Invariant returns the result of one invariant ("drift-convergence",
// "drift-staleness", "latency", "faults"); ok is false when the run has
// none of that name.
func (o *Outcome) Invariant(name string) (r invariant.Result, ok bool) {
	if o.Summary == nil {
		return r, false
	}
	for _, r := range o.Summary.Invariants {
		if r.Name == name {
			return r, true
		}
	}
	return r, false
}

// Failed reports whether the run was carried out and the invariant of
// that name failed: what a test of a broken operator asserts.
func (o *Outcome) Failed(name string) bool {
	r, ok := o.Invariant(name)
	return o.Err == nil && ok && !r.Passed
}

// Latency is the run's latency (truth change to reported value).
func (o *Outcome) Latency() invariant.LatencyStats {
	if o.Summary == nil {
		return invariant.LatencyStats{}
	}
	return o.Summary.Latency
}

// Explain says in a few lines what happened: the run's error, each
// invariant that failed and why, the latency, and where the bundle and
// report are. It is the message for a failed assertion.
func (o *Outcome) Explain() string {
	var b strings.Builder
	s := o.Summary
	if s == nil {
		fmt.Fprintf(&b, "the run did not start: %v", o.Err)
		return b.String()
	}
	verdict := "passed"
	if !o.Passed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "scenario %s (seed %d) %s on the %s backend, %s with %s", s.Scenario, s.Seed, verdict, s.Backend, s.Subject, s.Operator)
	if o.Err != nil {
		fmt.Fprintf(&b, "\n  run error: %v", o.Err)
	}
	for _, r := range s.Invariants {
		if !r.Passed {
			fmt.Fprintf(&b, "\n  %s FAILED: %s", r.Name, r.Detail)
		}
	}
	l := s.Latency
	fmt.Fprintf(&b, "\n  latency (%d samples): p50 %.1fms p99 %.1fms max %.1fms", l.Count, l.P50, l.P99, l.Max)
	if l.Unresolved > 0 {
		fmt.Fprintf(&b, ", %d never reflected", l.Unresolved)
	}
	for _, f := range s.Faults {
		switch {
		case f.Skipped != "":
			fmt.Fprintf(&b, "\n  fault %d %s skipped: %s", f.Index, f.Type, f.Skipped)
		case f.Error != "":
			fmt.Fprintf(&b, "\n  fault %d %s error: %s", f.Index, f.Type, f.Error)
		case f.Window != nil:
			fmt.Fprintf(&b, "\n  fault %d %s window: %d samples, p99 %.1fms; drift %.3f objects", f.Index, f.Type, f.Window.Latency.Count, f.Window.Latency.P99, f.Window.Drift.MeanObjects)
		}
	}
	if o.Dir != "" {
		fmt.Fprintf(&b, "\n  bundle: %s", o.Dir)
	}
	if o.Report != "" {
		fmt.Fprintf(&b, "\n  report: %s", o.Report)
	}
	return b.String()
}

// String is Explain.
func (o *Outcome) String() string { return o.Explain() }

// Records reads the run's history (history.jsonl in its bundle), while
// the bundle is there: during the run's test, or later when it was kept.
func (o *Outcome) Records() ([]history.Record, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("lab: the run has no bundle")
	}
	f, err := os.Open(filepath.Join(o.Dir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return history.Read(f)
}

package bundle

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// InvariantDiff is one invariant's outcome in the recorded run and the replay.
type InvariantDiff struct {
	Name string
	// Recorded and Replayed are "pass", "FAIL" or "-" (absent).
	Recorded, Replayed string
}

// Same reports whether both runs gave the same outcome.
func (d InvariantDiff) Same() bool { return d.Recorded == d.Replayed }

// Comparison sets a replayed run against the recorded one.
type Comparison struct {
	Backend             string
	Invariants          []InvariantDiff
	Recorded, Replayed  *report.Summary
	RecordedOps, NewOps int  // workload operations (ops.jsonl lines); -1 unknown
	SameOps             bool // the replay applied the recorded operations
	// RecordedFaults and NewFaults are the executed fault schedules
	// (faults.json), when known.
	RecordedFaults, NewFaults []ExecutedFault
	TraceHashesCompared       bool
	TraceHashMatches          bool
	RecordedHash, NewHash     string
}

// SameVerdict reports whether every invariant had the same outcome.
func (c *Comparison) SameVerdict() bool {
	for _, d := range c.Invariants {
		if !d.Same() {
			return false
		}
	}
	return c.Recorded.Passed == c.Replayed.Passed
}

// Reproduced reports whether the replay reproduced the recorded run: the
// same trace hash on the virtual backend, else the same invariant outcomes.
func (c *Comparison) Reproduced() bool {
	if c.TraceHashesCompared {
		return c.TraceHashMatches
	}
	return c.SameVerdict()
}

func outcome(rs []invariant.Result, name string) string {
	for _, r := range rs {
		if r.Name == name {
			if r.Passed {
				return "pass"
			}
			return "FAIL"
		}
	}
	return "-"
}

// Compare compares a replayed run's summary with the recorded one.
func Compare(recorded, replayed *report.Summary) *Comparison {
	c := &Comparison{Backend: replayed.Backend, Recorded: recorded, Replayed: replayed, RecordedOps: -1, NewOps: -1}
	seen := map[string]bool{}
	for _, list := range [][]invariant.Result{recorded.Invariants, replayed.Invariants} {
		for _, r := range list {
			if seen[r.Name] {
				continue
			}
			seen[r.Name] = true
			c.Invariants = append(c.Invariants, InvariantDiff{Name: r.Name,
				Recorded: outcome(recorded.Invariants, r.Name), Replayed: outcome(replayed.Invariants, r.Name)})
		}
	}
	if recorded.TraceHash != "" && replayed.TraceHash != "" {
		c.TraceHashesCompared = true
		c.RecordedHash, c.NewHash = recorded.TraceHash, replayed.TraceHash
		c.TraceHashMatches = recorded.TraceHash == replayed.TraceHash
	}
	return c
}

// Print writes the comparison as a table: invariant outcomes, then latency
// percentiles with their differences.
func (c *Comparison) Print(w io.Writer) {
	if c.TraceHashesCompared {
		if c.TraceHashMatches {
			fmt.Fprintf(w, "trace hash matches: %s\n", c.NewHash)
		} else {
			fmt.Fprintf(w, "trace hash DIFFERS: recorded %s, replay %s\n", c.RecordedHash, c.NewHash)
		}
	}
	if c.RecordedOps >= 0 {
		if c.SameOps {
			fmt.Fprintf(w, "workload: the same %d operations as the recorded run\n", c.NewOps)
		} else {
			fmt.Fprintf(w, "workload: DIFFERENT operations (recorded %d, replay %d)\n", c.RecordedOps, c.NewOps)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "invariant\trecorded\treplay\t")
	for _, d := range c.Invariants {
		mark := ""
		if !d.Same() {
			mark = "changed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.Recorded, d.Replayed, mark)
	}
	verdict := func(p bool) string {
		if p {
			return "PASS"
		}
		return "FAIL"
	}
	fmt.Fprintf(tw, "verdict\t%s\t%s\t\n", verdict(c.Recorded.Passed), verdict(c.Replayed.Passed))
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "latency (ms)\t recorded\t   replay\t    delta\tdelta %\t")
	a, b := c.Recorded.Latency, c.Replayed.Latency
	row := func(name string, x, y float64) {
		pct := "-"
		if x != 0 {
			pct = fmt.Sprintf("%+.0f%%", (y-x)/x*100)
		}
		fmt.Fprintf(tw, "%s\t%9.1f\t%9.1f\t%+9.1f\t%6s\t\n", name, x, y, y-x, pct)
	}
	fmt.Fprintf(tw, "samples\t%9d\t%9d\t%+9d\t\t\n", a.Count, b.Count, b.Count-a.Count)
	row("p50", a.P50, b.P50)
	row("p90", a.P90, b.P90)
	row("p99", a.P99, b.P99)
	row("max", a.Max, b.Max)
	if a.Unresolved+b.Unresolved > 0 {
		fmt.Fprintf(tw, "unresolved\t%9d\t%9d\t%+9d\t\t\n", a.Unresolved, b.Unresolved, b.Unresolved-a.Unresolved)
	}
	if len(c.Recorded.Faults)+len(c.Replayed.Faults) > 0 {
		o, p := c.Recorded.LatencyOutside, c.Replayed.LatencyOutside
		fmt.Fprintf(tw, "samples outside faults\t%9d\t%9d\t%+9d\t\t\n", o.Count, p.Count, p.Count-o.Count)
		if o.Count > 0 && p.Count > 0 {
			row("p99 outside faults", o.P99, p.P99)
		}
		for i := range c.Replayed.Faults {
			if i >= len(c.Recorded.Faults) {
				break
			}
			fr, fp := c.Recorded.Faults[i].Window, c.Replayed.Faults[i].Window
			if fr != nil && fp != nil {
				row(fmt.Sprintf("p99 in fault %d (%s)", i, c.Replayed.Faults[i].Type), fr.Latency.P99, fp.Latency.P99)
			}
		}
	}
	_ = tw.Flush()
	c.printFaults(w)
}

func window(f ExecutedFault) string {
	switch {
	case f.Skipped != "":
		return "skipped"
	case f.StopMs == nil:
		return fmt.Sprintf("%.1fs–end", f.StartMs/1000)
	}
	return fmt.Sprintf("%.1fs–%.1fs", f.StartMs/1000, *f.StopMs/1000)
}

// printFaults sets the executed fault windows side by side.
func (c *Comparison) printFaults(w io.Writer) {
	if len(c.RecordedFaults)+len(c.NewFaults) == 0 {
		return
	}
	find := func(fs []ExecutedFault, i int) string {
		for _, f := range fs {
			if f.Index == i {
				return window(f)
			}
		}
		return "-"
	}
	seen := map[int]bool{}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "fault window (run time)\trecorded\treplay\t")
	for _, list := range [][]ExecutedFault{c.RecordedFaults, c.NewFaults} {
		for _, f := range list {
			if seen[f.Index] {
				continue
			}
			seen[f.Index] = true
			fmt.Fprintf(tw, "%d %s\t%s\t%s\t\n", f.Index, f.Type, find(c.RecordedFaults, f.Index), find(c.NewFaults, f.Index))
		}
	}
	_ = tw.Flush()
}

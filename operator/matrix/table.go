package matrix

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/driftlab/driftlab/sim/invariant"
)

// Abbrev is the one-letter code of each judged invariant in the table.
var Abbrev = map[string]string{
	invariant.DriftConvergence: "C",
	invariant.DriftStaleness:   "S",
	invariant.LatencySLO:       "L",
}

func codes(invs []string) string {
	var b strings.Builder
	for _, n := range invs {
		if a, ok := Abbrev[n]; ok {
			b.WriteString(a)
		} else {
			b.WriteString("?")
		}
	}
	return b.String()
}

// Print writes the matrix as two aligned tables and a verdict: seeded bugs
// × scenarios (a cell is "k:CSL", caught at the k-th seed by the invariants
// coded C drift-convergence, S drift-staleness, L latency, or "-" not
// caught), then cache variants × scenarios for the correct operator (a cell
// is failing seeds/seeds). Columns are separated by at least two spaces
// and no cell contains a space, so the output splits on whitespace.
func (r *Result) Print(w io.Writer) {
	if len(r.Bugs) > 0 {
		fmt.Fprintf(w, "seeded bugs x scenarios, %s backend, up to %d seeds each; k:XYZ = caught at the k-th seed by C drift-convergence, S drift-staleness, L latency; - = not caught; n/a = the backend cannot express the bug\n", r.Backend, r.Seeds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "bug\t%s\tcaught\n", strings.Join(r.Scenarios, "\t"))
		for _, row := range r.Bugs {
			cells := make([]string, len(row.Cells))
			for i, c := range row.Cells {
				switch {
				case row.NotApplicable != "":
					cells[i] = "n/a"
				case c.CaughtAfter > 0:
					cells[i] = fmt.Sprintf("%d:%s", c.CaughtAfter, codes(c.Invariants))
				case c.Errors > 0:
					cells[i] = fmt.Sprintf("error(%d)", c.Errors)
				default:
					cells[i] = "-"
				}
			}
			verdict := "yes"
			switch {
			case row.NotApplicable != "":
				verdict = "n/a"
			case !row.Caught:
				verdict = "NO"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", row.Bug, strings.Join(cells, "\t"), verdict)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if len(r.Clean) > 0 {
		fmt.Fprintf(w, "correct operator x cache variants x scenarios: seeds with a violation / seeds run (must be 0)\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "cache\t%s\n", strings.Join(r.Scenarios, "\t"))
		n := len(r.Scenarios)
		for i := 0; i+n <= len(r.Clean); i += n {
			cells := make([]string, n)
			for j, c := range r.Clean[i : i+n] {
				cells[j] = fmt.Sprintf("%d/%d", c.Violations, c.Seeds)
				if c.Errors > 0 {
					cells[j] += fmt.Sprintf("+%derr", c.Errors)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\n", r.Clean[i].Cache, strings.Join(cells, "\t"))
		}
		tw.Flush()
	}
	for _, row := range r.Bugs {
		if row.NotApplicable != "" {
			fmt.Fprintf(w, "  %s: n/a on %s: %s\n", row.Bug, r.Backend, row.NotApplicable)
			continue
		}
		for _, c := range row.Cells {
			if c.CaughtAfter > 0 {
				fmt.Fprintf(w, "  %s on %s: seed %d: %s\n", row.Bug, c.Scenario, c.Seed, c.Detail)
				break
			}
		}
	}
	for _, c := range r.Clean {
		if c.Violations > 0 {
			fmt.Fprintf(w, "  FALSE ALARM: correct operator, cache %s, %s: %d seeds; first %d: %s: %s\n", c.Cache, c.Scenario, c.Violations, c.Seed, strings.Join(c.Invariants, ", "), c.Detail)
		}
		if c.Errors > 0 {
			fmt.Fprintf(w, "  RUN ERROR: cache %s, %s: %s\n", c.Cache, c.Scenario, c.Err)
		}
	}
	for _, row := range r.Bugs {
		for _, c := range row.Cells {
			if c.Errors > 0 {
				fmt.Fprintf(w, "  RUN ERROR: %s on %s: %s\n", row.Bug, c.Scenario, c.Err)
			}
		}
	}
	switch {
	case r.OK():
		var parts []string
		switch {
		case len(r.NotApplicable) > 0 && len(r.NotApplicable) == len(r.Bugs):
			parts = append(parts, fmt.Sprintf("no seeded bug the %s backend can express (n/a: %s)", r.Backend, strings.Join(r.NotApplicable, ", ")))
		case len(r.NotApplicable) > 0:
			parts = append(parts, fmt.Sprintf("every seeded bug the %s backend can express caught (n/a: %s)", r.Backend, strings.Join(r.NotApplicable, ", ")))
		case len(r.Bugs) > 0:
			parts = append(parts, "every seeded bug caught")
		}
		if len(r.Clean) > 0 {
			parts = append(parts, "correct operator clean")
		}
		fmt.Fprintf(w, "verdict: %s (%d runs, %.1fs)\n", strings.Join(parts, ", "), r.Runs, r.Elapsed.Seconds())
	default:
		fmt.Fprintf(w, "verdict: FAIL: uncaught bugs [%s], %d false alarms, %d run errors (%d runs, %.1fs)\n",
			strings.Join(r.Uncaught, ", "), r.FalseAlarms, r.RunErrors, r.Runs, r.Elapsed.Seconds())
	}
}

// WriteJSON writes the result to a file.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

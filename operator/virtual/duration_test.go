package virtual

import (
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
)

// TestWorkloadLastsItsDuration (issue 17): the workload ends at
// workload.duration, not at its last operation. With the defaults and no
// scale or annotate loop the last operation comes at about 2 ms, and a
// fault at 5 s of a 30 s workload was reported "never started" (a 2 s
// window shrank to 10.8 ms with no samples while the faults check passed).
// The same holds for explicit operations that end early.
func TestWorkloadLastsItsDuration(t *testing.T) {
	for _, c := range []struct{ name, workload string }{
		{"generated", "workload: {duration: 30s}\n"},
		{"explicit", "workload:\n  duration: 30s\n  operations:\n    - {at: 0s, op: create, name: kv-0, replicas: 2}\n    - {at: 1s, op: scale, name: kv-0, replicas: 3}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := scenarios.Parse("d.yaml", []byte("name: d\nbackend: virtual\n"+c.workload+
				"faults:\n  - {type: gc-assist-pressure, start: 5s, duration: 2s}\n"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var end time.Duration = -1
			for _, r := range res.Records {
				if r.Kind == history.KindWorkloadEnd {
					end = r.T
				}
			}
			if end != 30*time.Second {
				t.Errorf("workload-end at %v, want 30s", end)
			}
			if len(res.Summary.Faults) != 1 {
				t.Fatalf("faults %+v", res.Summary.Faults)
			}
			f := res.Summary.Faults[0]
			if f.Error != "" || f.Skipped != "" || f.Window == nil {
				t.Fatalf("the fault at 5s did not run: error %q skipped %q", f.Error, f.Skipped)
			}
			if f.Window.StartMs != 5000 || f.Window.EndMs != 7000 {
				t.Errorf("window %.1f–%.1f ms, want 5000–7000", f.Window.StartMs, f.Window.EndMs)
			}
			if res.SimTime < 30*time.Second {
				t.Errorf("the run ended at %v, before the workload's 30 s", res.SimTime)
			}
		})
	}
}

package auditimport

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
)

// FuzzImport: any bytes either import, as a scenario that encodes, parses
// back and lists its operations in time order within the workload, or are
// refused with an error naming the log. Nothing panics.
func FuzzImport(f *testing.F) {
	t0 := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	f.Add([]byte(strings.Join([]string{
		line("1", "create", "orders", "", 201, t0, 3, "", "alice"),
		line("2", "patch", "orders", "", 200, t0.Add(1500*time.Millisecond), 5, `"driftlab.io/tick":"1"`, "alice"),
		line("3", "delete", "orders", "", 200, t0.Add(3*time.Second), 0, "", "alice"),
	}, "\n")))
	f.Add([]byte(line("4", "update", "legacy", "", 200, t0, 1500, "", "bob")))
	f.Add([]byte(line("5", "patch", "x", "", 200, time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC), 1, "", "bob") + "\n" +
		line("6", "patch", "x", "", 200, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 2, "", "bob")))
	f.Add([]byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1"}`))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 256<<10 {
			return
		}
		s, _, err := Import(bytes.NewReader(data), Options{Source: "fuzz.log"})
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.log") {
				t.Fatalf("error does not name the log: %v", err)
			}
			return
		}
		out, err := scenarios.Encode(s)
		if err != nil {
			t.Fatalf("an imported scenario does not encode: %v", err)
		}
		back, err := scenarios.Parse("imported.yaml", out)
		if err != nil {
			t.Fatalf("an imported scenario does not parse back: %v\n%s", err, out)
		}
		ops := back.Workload.Operations
		for i, op := range ops {
			if op.At.Duration < 0 || op.At.Duration > back.Workload.Duration.Duration || i > 0 && op.At.Duration < ops[i-1].At.Duration {
				t.Fatalf("operation %d at %v: out of order or outside the workload (%v)", i, op.At, back.Workload.Duration)
			}
		}
	})
}

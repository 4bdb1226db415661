package scenarios_test

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/workload"
)

// addSeeds gives a fuzz target every built-in scenario and a few edge
// cases as its starting corpus (testdata/fuzz/<target> holds what fuzzing
// found).
func addSeeds(f *testing.F) {
	for _, n := range scenarios.BuiltinNames() {
		s, err := scenarios.Builtin(n)
		if err != nil {
			f.Fatal(err)
		}
		out, err := scenarios.Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out)
	}
	for _, y := range []string{
		"", "name: x\n", "name: x\nworkload: {objects: 1, duration: 1s}\n",
		"name: x\nworkload:\n  operations:\n    - {at: 0s, op: create, cluster: a, replicas: 1}\n",
		"name: x\nfaults:\n  - {type: wal-fsync-delay, start: 1s, duration: 1s, delay: 10ms}\n",
		"name: x\nkubelet: {readyDelay: {distribution: exponential, min: 1ms, max: 1s, mean: 10ms}}\n",
		"name: &a x\nseed: *a\n", "name: x\n---\nname: y\n", "{", "name: [",
	} {
		f.Add([]byte(y))
	}
}

// watchdog panics, naming the input, when the call it guards takes more
// than 10 s (the bound on refusing a scenario): a hang is a
// failure the fuzzer would otherwise not report. Call the result when done.
func watchdog(data []byte) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			panic(fmt.Sprintf("more than 10s on the input %q", data))
		}
	}()
	return func() { close(done) }
}

// FuzzParseEncodeRoundTrip: whatever Parse accepts, Encode writes (or
// refuses with an error, for a value loading replaces by a default), and
// the written file parses back to the same scenario and encodes to the
// same bytes. Nothing panics.
func FuzzParseEncodeRoundTrip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		defer watchdog(data)()
		s, err := scenarios.Parse("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(*scenarios.FieldError); !ok && !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out, err := scenarios.Encode(s)
		if err != nil {
			return // not writable; Encode says so rather than write a lie
		}
		back, err := scenarios.Parse("encoded.yaml", out)
		if err != nil {
			t.Fatalf("Encode wrote a file that does not parse: %v\n%s", err, out)
		}
		if d := cmp.Diff(s, back, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(scenarios.Scenario{}, "File"), cmpopts.EquateNaNs()); d != "" {
			t.Fatalf("changed through Encode and Parse (-parsed +re-parsed):\n%s\n%s", d, out)
		}
		again, err := scenarios.Encode(back)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("encoding is not a fixed point (%v):\n%s\n---\n%s", err, out, again)
		}
	})
}

// Bounds of the virtual run of FuzzParseRun. The scenario format bounds
// what a file may ask for (MaxOperations, MaxDuration, MaxFileSize) and
// refuses NaN and infinities; within those bounds a run may still take
// minutes, which is by design, so the target runs only what is small.
// What the format refuses is not filtered here but asserted: a NaN that
// Parse let through fails the target.
const (
	fuzzMaxOps      = 5_000
	fuzzMaxDuration = 10 * time.Minute
	fuzzMaxEvents   = 300_000
	fuzzMaxHeap     = 512 << 20
)

// fuzzRunnable reports whether s is small enough for the fuzz target's run.
func fuzzRunnable(t *testing.T, s *scenarios.Scenario) bool {
	w := s.Workload
	finite := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("Parse accepted %s = %v", field, v)
		}
	}
	finite("workload.annotate.rate", w.Annotate.Rate)
	for i, f := range s.Faults {
		finite(fmt.Sprintf("faults[%d].loss", i), f.Loss)
		finite(fmt.Sprintf("faults[%d].probability", i), f.Probability)
		finite(fmt.Sprintf("faults[%d].rate", i), f.Rate)
	}
	if n := workload.CountOps(w); n > scenarios.MaxOperations {
		t.Fatalf("Parse accepted a workload of %d operations", n)
	}
	end := w.Duration.Duration
	if end > fuzzMaxDuration || len(w.Operations) > fuzzMaxOps || w.Objects > 20 || w.InitialReplicas.Max > 20 || w.Scale.Replicas.Max > 20 {
		return false
	}
	if workload.CountOps(w) > fuzzMaxOps {
		return false
	}
	for _, op := range w.Operations {
		if op.Replicas > 20 {
			return false
		}
	}
	for _, f := range s.Faults {
		if st, en := f.Window(); st > fuzzMaxDuration || en > 2*fuzzMaxDuration {
			return false
		}
	}
	return s.Invariants.Drift.ConvergeWithin.Duration <= time.Minute
}

// FuzzParseRun: a scenario Parse accepts runs on the virtual backend
// without a panic (a harness bug) and within a memory bound, or ends with
// an error (the event budget).
func FuzzParseRun(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		defer watchdog(data)()
		s, err := scenarios.Parse("fuzz.yaml", data)
		if err != nil || !fuzzRunnable(t, s) {
			return
		}
		res, err := virtual.Run(s, virtual.Options{Verdict: true, MaxEvents: fuzzMaxEvents})
		if err != nil {
			return
		}
		if res.Summary == nil || len(res.Summary.Invariants) == 0 {
			t.Fatalf("a run without a verdict: %+v", res)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > fuzzMaxHeap {
			t.Fatalf("heap %d MB after a run of %d events", ms.HeapAlloc>>20, res.Events)
		}
	})
}

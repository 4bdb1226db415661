package scenarios

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseErr parses src as f.yaml and returns its error, failing when there
// is none or when it does not contain want.
func parseErr(t *testing.T, src, want string) *FieldError {
	t.Helper()
	_, err := Parse("f.yaml", []byte(src))
	if err == nil {
		t.Fatalf("no error for\n%s", src)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\nwant it to contain %q", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q is not a FieldError", err)
	}
	return fe
}

// TestScenarioLimits (issue 17): what a scenario asks for is bounded, and
// the limit that was hit is named with file, line and field. Before, a
// scale every 1ns generated 20 billion operations (1.6 TB) at run time,
// and a million hours of 1 s scales 288 GB.
func TestScenarioLimits(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"scale every 1ns", "name: x\nworkload:\n  scale:\n    every: 1ns\n",
			"f.yaml:4: workload.scale.every: 1ns over 20s makes 20000000000 operations: more than the limit of 1000000 per run"},
		{"a million hours", "name: x\nworkload:\n  duration: 1000000h\n  scale: {every: 1s}\n",
			"f.yaml:3: workload.duration: 1000000h0m0s is longer than the limit of 720h0m0s"},
		{"a month of 1s scales", "name: x\nworkload:\n  duration: 720h\n  scale: {every: 1s}\n",
			"f.yaml:4: workload.scale.every: 1s over 720h0m0s makes 2592000 operations: more than the limit of 1000000 per run"},
		{"a month of annotations", "name: x\nworkload:\n  duration: 720h\n  annotate:\n    rate: 100\n",
			"f.yaml:5: workload.annotate.rate: 100 per second over 720h0m0s makes 259200000 operations: more than the limit of 1000000 per run"},
		{"huge exponential mean", "name: x\nkubelet:\n  readyDelay: {distribution: exponential, min: 0s, mean: 1000000h, max: 1s}\n",
			"f.yaml:3: kubelet.readyDelay.mean: 1000000h0m0s is longer than the limit of 720h0m0s"},
		{"fault window past the limit", "name: x\nworkload: {duration: 720h}\nfaults:\n  - {type: gc-assist-pressure, start: 1s, duration: 1000000h}\n",
			"f.yaml:4: faults[0].duration"},
		{"GC pressure of 10 million entries", "name: x\nfaults:\n  - {type: gc-assist-pressure, entries: 10000000}\n",
			"f.yaml:3: faults[0].entries: must be within 1..1000000 (about 630 bytes each in the operator's process), got 10000000"},
		{"long name", "# a comment\nname: " + strings.Repeat("a", 250) + "\n",
			"f.yaml:2: name: 250 characters: at most 63"},
	} {
		t.Run(c.name, func(t *testing.T) { parseErr(t, c.src, c.want) })
	}

	// The file itself: too large is refused before it is decoded, also
	// when it has no size to look at first (/dev/zero).
	big := "name: x\n#" + strings.Repeat("x", MaxFileSize) + "\n"
	if fe := parseErr(t, big, "more than the limit of 4 MiB for a scenario file"); fe.File != "f.yaml" {
		t.Fatalf("file %q", fe.File)
	}
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+": "+
		"4194314 bytes: more than the limit of 4 MiB") {
		t.Fatalf("Load of a file over the limit: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		t0 := time.Now()
		if _, err := Load("/dev/zero"); err == nil || !strings.Contains(err.Error(), "/dev/zero: more than the limit of 4 MiB") {
			t.Fatalf("Load(/dev/zero): %v", err)
		}
		t.Logf("/dev/zero refused in %v", time.Since(t0))
	}
}

// TestNonFiniteNumbersRefused (issue 17): NaN and infinities, in any YAML
// spelling, are refused for every number field: a NaN loss, probability
// or rate was reported as injected and did nothing, and a NaN rate of GC
// pressure grew memory without bound. A scenario built in Go is refused
// by Validate too.
func TestNonFiniteNumbersRefused(t *testing.T) {
	for _, c := range []struct{ field, src string }{
		{"faults[0].loss", "name: x\nfaults:\n  - type: network-retransmit\n    loss: %s\n"},
		{"faults[0].probability", "name: x\nfaults:\n  - type: wal-fsync-delay\n    delay: 10ms\n    probability: %s\n"},
		{"faults[0].rate", "name: x\nfaults:\n  - type: gc-assist-pressure\n    rate: %s\n"},
		{"workload.annotate.rate", "name: x\nworkload:\n  annotate:\n    rate: %s\n"},
	} {
		for _, v := range []string{"!!float NaN", ".nan", ".NaN", ".inf", "-.inf", "!!float +Inf"} {
			src := strings.Replace(c.src, "%s", v, 1)
			line := strings.Count(src, "\n")
			want := "f.yaml:" + string(rune('0'+line)) + ": " + c.field + ": want a finite number"
			t.Run(c.field+"="+v, func(t *testing.T) { parseErr(t, src, want) })
		}
	}

	for _, c := range []struct {
		field string
		set   func(*Scenario)
	}{
		{"faults[0].loss", func(s *Scenario) {
			s.Faults = []Fault{{Type: FaultNetworkRetransmit, Loss: math.NaN()}}
		}},
		{"faults[0].probability", func(s *Scenario) {
			s.Faults = []Fault{{Type: FaultWALFsyncDelay, Delay: Duration{10 * time.Millisecond}, Probability: math.NaN()}}
		}},
		{"faults[0].rate", func(s *Scenario) { s.Faults = []Fault{{Type: FaultGCAssistPressure, Rate: math.NaN()}} }},
		{"workload.annotate.rate", func(s *Scenario) { s.Workload.Annotate.Rate = math.NaN() }},
		{"workload.annotate.rate", func(s *Scenario) { s.Workload.Annotate.Rate = math.Inf(1) }},
	} {
		s := &Scenario{Name: "x"}
		c.set(s)
		if err := s.SetDefaults(); err != nil {
			t.Fatal(err)
		}
		var fe *FieldError
		if err := s.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate of a Go scenario with %s not finite: %v", c.field, err)
		}
	}
}

// TestExplicitZerosAreHonouredOrRefused (issue 17): a zero the file
// writes is never silently replaced by the default: it is used, or the
// field is refused with a message. Before, objects: 0 ran 3 objects,
// initialReplicas {0, 0} became 1-3 and a constant readyDelay of 0s 100 ms.
func TestExplicitZerosAreHonouredOrRefused(t *testing.T) {
	parse := func(src string) *Scenario {
		t.Helper()
		s, err := Parse("f.yaml", []byte("name: x\n"+src))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		return s
	}
	if s := parse("workload: {objects: 0}\n"); s.Workload.Objects != 0 {
		t.Errorf("objects: 0 gave %d objects", s.Workload.Objects)
	}
	if s := parse("workload: {initialReplicas: {min: 0, max: 0}}\n"); s.Workload.InitialReplicas != (IntRange{}) {
		t.Errorf("initialReplicas {0,0} gave %+v", s.Workload.InitialReplicas)
	}
	if s := parse("workload: {scale: {every: 1s, replicas: {min: 0, max: 0}}}\n"); s.Workload.Scale.Replicas != (IntRange{}) {
		t.Errorf("scale.replicas {0,0} gave %+v", s.Workload.Scale.Replicas)
	}
	if s := parse("kubelet: {readyDelay: {distribution: constant, min: 0s}}\n"); s.Kubelet.ReadyDelay.Min.Duration != 0 || s.Kubelet.ReadyDelay.Max.Duration != 0 {
		t.Errorf("constant readyDelay 0s gave %+v", s.Kubelet.ReadyDelay)
	}
	if s := parse("kubelet: {readyDelay: {max: 0s}}\n"); s.Kubelet.ReadyDelay.Min.Duration != 0 || s.Kubelet.ReadyDelay.Max.Duration != 0 {
		t.Errorf("readyDelay max 0s gave %+v", s.Kubelet.ReadyDelay)
	}
	if s := parse("seed: 0\n"); s.Seed != 0 {
		t.Errorf("seed: 0 gave seed %d", s.Seed)
	}
	if s := parse("workload: {duration: 0s}\n"); s.Workload.Duration.Duration != 0 {
		t.Errorf("duration: 0s gave %v", s.Workload.Duration)
	}
	if s := parse("invariants: {drift: {convergeWithin: 0s, staleness: 0s}}\n"); s.Invariants.Drift.ConvergeWithin.Duration != 0 || s.Invariants.Drift.Staleness.Duration != 0 {
		t.Errorf("drift zeros gave %+v", s.Invariants.Drift)
	}
	if s := parse("world: {nodes: 0}\n"); s.World == nil || s.World.Nodes != 0 {
		t.Errorf("world.nodes: 0 gave %+v", s.World)
	}
	// Left out, the defaults apply.
	if s := parse(""); s.Workload.Objects != 3 || s.Workload.InitialReplicas != (IntRange{1, 3}) || s.Kubelet.ReadyDelay.Min.Duration != 100*time.Millisecond || s.Seed != 1 {
		t.Errorf("defaults: %+v", s)
	}

	// Refused, naming the field, where zero is not a usable value.
	parseErr(t, "name: x\nfaults:\n  - type: wal-fsync-delay\n    delay: 10ms\n    probability: 0\n",
		"f.yaml:5: faults[0].probability: 0 is not a usable value: leave the field out for the default (1)")
	parseErr(t, "name: x\nfaults:\n  - {type: gc-assist-pressure, rate: 0}\n", "f.yaml:3: faults[0].rate: 0 is not a usable value")
	parseErr(t, "name: x\nworkload:\n  namespace: \"\"\n", `f.yaml:3: workload.namespace: empty`)
	// The objects the user wrote, not a default they never did.
	parseErr(t, "name: x\nworkload:\n  objects: 0\n  deleteObjects: 4\n",
		"f.yaml:4: workload.deleteObjects: must be between 0 and objects (0), got 4")
}

// TestOldFieldNamesSayWhatTheyAreNow: the workload acts on objects of any
// kind, and the fields that said clusters say so.
func TestOldFieldNamesSayWhatTheyAreNow(t *testing.T) {
	parseErr(t, "name: x\nworkload:\n  clusters: 0\n", "f.yaml:3: workload.clusters: renamed to workload.objects")
	parseErr(t, "name: x\nworkload:\n  deleteClusters: 1\n", "f.yaml:3: workload.deleteClusters: renamed to workload.deleteObjects")
	parseErr(t, "name: x\nworkload:\n  operations:\n    - {at: 0s, op: create, cluster: a}\n",
		"f.yaml:4: workload.operations[0].cluster: renamed to workload.operations[0].name")
}

// TestOneDocumentPerFile (issue 17): a second YAML document was ignored,
// even an invalid one.
func TestOneDocumentPerFile(t *testing.T) {
	fe := parseErr(t, "name: x\n---\nname: y\n", "f.yaml:2: a second YAML document (after ---): a scenario file holds one")
	if fe.Line != 2 { // the line of its ---
		t.Errorf("line %d", fe.Line)
	}
	parseErr(t, "name: x\n---\nname: [y\n", "not valid YAML (in a second document, after ---")
	parseErr(t, "name: x\n--- 3\n", "a second YAML document")
	// A document marker before the only document is fine.
	if _, err := Parse("f.yaml", []byte("---\nname: x\n")); err != nil {
		t.Errorf("--- before the one document: %v", err)
	}
	// A syntax error names its line in front, as every other error does.
	if fe := parseErr(t, "name: x\nseed: 1\nworkload: objects: 1\n", "f.yaml:3: not valid YAML: mapping values are not allowed"); fe.Line != 3 {
		t.Errorf("syntax error at line %d", fe.Line)
	}
}

// TestEmptyFileSaysSo (issue 17): an empty file said "not valid YAML: EOF".
func TestEmptyFileSaysSo(t *testing.T) {
	for _, src := range []string{"", "\n\n", "  \t\n", "# only a comment\n", "# a\n# b\n", "---\n", "--- # c\n"} {
		_, err := Parse("f.yaml", []byte(src))
		if err == nil || !strings.HasPrefix(err.Error(), "f.yaml: the file is empty") || strings.Contains(err.Error(), "EOF") {
			t.Errorf("%q: %v", src, err)
		}
	}
	p := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+": the file is empty") {
		t.Errorf("Load of an empty file: %v", err)
	}
}

package scenarios

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBuiltinsLoad(t *testing.T) {
	names := BuiltinNames()
	if len(names) == 0 || names[0] == "" {
		t.Fatalf("no built-in scenarios: %v", names)
	}
	for _, n := range names {
		s, err := Builtin(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if s.Name != n {
			t.Errorf("built-in %s is named %q; file name and name must agree", n, s.Name)
		}
	}
	s, _ := Builtin("baseline")
	if s.Seed != 1 || s.Backend != "local" || s.Workload.Annotate.Rate != 5 || s.Invariants.Latency.P99.Duration != time.Second {
		t.Errorf("baseline decoded wrong: %+v", s)
	}
}

func TestDefaultsFilledIn(t *testing.T) {
	s, err := Parse("min.yaml", []byte("name: min\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Seed != 1 || s.Backend != "local" || s.Operator.Cache != "map" || s.Workload.Objects != 3 ||
		s.Workload.Duration.Duration != 20*time.Second || s.Kubelet.ReadyDelay.Distribution != "uniform" ||
		s.Invariants.Drift.ConvergeWithin.Duration != 15*time.Second {
		t.Errorf("defaults not filled in: %+v", s)
	}
}

// Every bad input names the file, the line and the field.
func TestBadInputNamesFileLineField(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown field", "name: x\nworkload:\n  clsuters: 3\n", `bad.yaml:3: workload.clsuters: unknown field (known fields: annotate, deleteObjects,`},
		{"wrong type", "name: x\nworkload:\n  objects: three\n", `bad.yaml:3: workload.objects: want an integer, got "three"`},
		{"bad duration", "name: x\nworkload:\n  scale:\n    every: 5x\n", `bad.yaml:4: workload.scale.every: invalid duration "5x"`},
		{"negative duration", "name: x\ninvariants:\n  latency:\n    p99: -1s\n", `bad.yaml:4: invariants.latency.p99: must not be negative`},
		{"negative mean", "name: x\ninvariants:\n  latency: {mean: -1s}\n", `bad.yaml:3: invariants.latency.mean: must not be negative`},
		{"bad enum", "name: x\noperator:\n  cache: btree\n", `bad.yaml:3: operator.cache: unknown value "btree" (want one of: arena, map, ptrmap, snapshot, syncmap)`},
		{"unknown bug", "name: x\noperator:\n  bugs: [freeze-status, nope]\n", `bad.yaml:3: operator.bugs[1]: unknown value "nope"`},
		{"range", "name: x\nworkload:\n  initialReplicas: {min: 4, max: 2}\n", `bad.yaml:3: workload.initialReplicas.max: must be at least min (4), got 2`},
		{"missing name", "seed: 3\n", `bad.yaml:1: name: required`},
		{"list expected", "name: x\nfaults: {type: x}\n", `bad.yaml:2: faults: want a list, got a mapping`},
		{"unknown fault", "name: x\nfaults:\n  - type: disk-full\n", `bad.yaml:3: faults[0].type: unknown fault type "disk-full" (known: crash-restart, failpoint, gc-assist-pressure, network-retransmit, stale-read, wal-fsync-delay, watcher-exhaustion, withhold-events)`},
		{"fault param of other type", "name: x\nfaults:\n  - type: wal-fsync-delay\n    delay: 10ms\n    loss: 0.1\n", `bad.yaml:5: faults[0].loss: not a parameter of wal-fsync-delay (its parameters: delay, jitter, probability)`},
		{"negative fault delay", "name: x\nfaults:\n  - type: wal-fsync-delay\n    delay: -150ms\n", `bad.yaml:4: faults[0].delay: must be positive, got -150ms`},
		{"overlapping windows", "name: x\nfaults:\n  - {type: wal-fsync-delay, delay: 10ms, start: 1s, duration: 5s}\n  - {type: wal-fsync-delay, delay: 20ms, start: 4s}\n", `bad.yaml:4: faults[1].start: overlaps faults[0]`},
		{"fault after workload", "name: x\nworkload: {duration: 10s}\nfaults:\n  - {type: gc-assist-pressure, start: 12s}\n", `bad.yaml:4: faults[0].start: 12s is not before the end of the workload (10s)`},
		{"start and afterOps", "name: x\nfaults:\n  - {type: gc-assist-pressure, start: 1s, afterOps: 5}\n", `faults[0].afterOps: give either start or afterOps, not both`},
		{"loss out of range", "name: x\nfaults:\n  - {type: network-retransmit, loss: 1.5}\n", `faults[0].loss: must be within 0..1`},
		{"burst longer than its period", "name: x\nfaults:\n  - type: network-retransmit\n    burst:\n      every: 2s\n      length: {min: 1s, max: 2s}\n", `bad.yaml:6: faults[0].burst.length.max: must be shorter than every (2s)`},
		{"burst loss 0", "name: x\nfaults:\n  - type: network-retransmit\n    burst:\n      every: 10s\n      length: {min: 1s, max: 2s}\n      loss: 0\n", `bad.yaml:7: faults[0].burst.loss: 0 is not a usable value`},
		{"burst loss NaN", "name: x\nfaults:\n  - {type: network-retransmit, burst: {every: 10s, length: {min: 1s, max: 2s}, loss: .nan}}\n", `bad.yaml:3: faults[0].burst.loss: want a finite number`},
		{"burst loss over 1", "name: x\nfaults:\n  - type: network-retransmit\n    burst: {every: 10s, length: {min: 1s, max: 2s}, loss: 1.5}\n", `bad.yaml:4: faults[0].burst.loss: must be within 0..1`},
		{"burst without period", "name: x\nfaults:\n  - type: network-retransmit\n    burst:\n      length: {min: 1s, max: 2s}\n", `bad.yaml:5: faults[0].burst.every: must be within`},
		{"burst min 0", "name: x\nfaults:\n  - type: network-retransmit\n    burst:\n      every: 5s\n      length:\n        max: 2s\n", `faults[0].burst.length.min: must be positive`},
		{"burst unknown field", "name: x\nfaults:\n  - type: network-retransmit\n    burst: {every: 5s, lenght: {min: 1s, max: 2s}}\n", `bad.yaml:4: faults[0].burst.lenght: unknown field (known fields: established, every, length, loss)`},
		{"burst on another fault", "name: x\nfaults:\n  - {type: wal-fsync-delay, delay: 10ms, burst: {every: 5s, length: {min: 1s, max: 2s}}}\n", `bad.yaml:3: faults[0].burst: not a parameter of wal-fsync-delay`},
		{"duplicate", "name: x\nname: y\n", `bad.yaml:2: name: field given twice`},
		{"reference operator env name", "name: x\noperator:\n  env: {\"A=B\": x}\n", `operator.env: "A=B" is not a variable name`},
		{"reference operator command", "name: x\noperator:\n  command: [my-operator]\n", `operator.command: is for your own operator`},
		{"not yaml", "name: [x\n", `bad.yaml:1: not valid YAML: did not find expected`},
		{"string for number", "name: x\nseed: \"7\"\n", `bad.yaml:2: seed: want a non-negative integer, got "7"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.src))
			if err == nil {
				t.Fatalf("no error for %q", c.src)
			}
			if !strings.HasPrefix(err.Error(), c.want) && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestFieldErrorIsTyped(t *testing.T) {
	_, err := Parse("f.yaml", []byte("name: x\nworkload: {objects: -1}\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.File != "f.yaml" || fe.Line != 2 || fe.Field != "workload.objects" {
		t.Fatalf("want a FieldError at f.yaml:2 workload.objects, got %#v", err)
	}
}

func TestLoadFileAndBuiltinName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(p, []byte("name: from-file\nseed: 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil || s.Name != "from-file" || s.Seed != 9 || s.File != p {
		t.Fatalf("Load(file) = %+v, %v", s, err)
	}
	if s, err := Load("baseline"); err != nil || s.Name != "baseline" {
		t.Fatalf("Load(\"baseline\") = %+v, %v", s, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
	if _, err := Load("no-such-builtin"); err == nil || !strings.Contains(err.Error(), "have: baseline") {
		t.Fatalf("unknown built-in: %v", err)
	}
}

func TestFaultDefaultsAndWindows(t *testing.T) {
	s, err := Parse("f.yaml", []byte(`name: f
faults:
  - {type: network-retransmit, loss: 0.2, start: 2s, duration: 3s}
  - {type: network-retransmit, loss: 0.2, link: operator-apiserver, start: 3s}
  - {type: wal-fsync-delay, delay: 100ms}
  - {type: watcher-exhaustion, afterOps: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	nr := s.Faults[0]
	if nr.Link != LinkAPIServerEtcd || nr.MinRTO.Duration != 200*time.Millisecond || nr.MaxRTO.Duration != 120*time.Second {
		t.Errorf("network-retransmit defaults: %+v", nr)
	}
	if st, end := nr.Window(); st != 2*time.Second || end != 5*time.Second {
		t.Errorf("window %s..%s", st, end)
	}
	if s.Faults[2].Probability != 1 {
		t.Errorf("fsync probability default %g, want 1", s.Faults[2].Probability)
	}
	if w := s.Faults[3]; w.Clients != 8 || w.Watchers != 64 || w.History != 20000 {
		t.Errorf("watcher-exhaustion defaults: %+v", w)
	}
}

func TestBurstParsesWithDefaults(t *testing.T) {
	s, err := Parse("b.yaml", []byte(`name: b
faults:
  - {type: network-retransmit, link: operator-apiserver, burst: {every: 10s, length: {min: 1s, max: 3s}}, start: 2s, duration: 20s}
  - {type: network-retransmit, loss: 0.01, burst: {every: 4s, length: {min: 500ms, max: 500ms}, loss: 0.5}}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := s.Faults[0].Burst
	if b == nil || b.Every.Duration != 10*time.Second || b.Length.Min.Duration != time.Second || b.Length.Max.Duration != 3*time.Second || b.Loss != 1 {
		t.Errorf("burst %+v, want every 10s, length 1s..3s, loss 1 (the default)", b)
	}
	if s.Faults[0].Loss != 0 {
		t.Errorf("a burst alone leaves loss outside it at 0, got %g", s.Faults[0].Loss)
	}
	if b := s.Faults[1].Burst; b.Loss != 0.5 {
		t.Errorf("burst loss %g, want 0.5", b.Loss)
	}
	// A Go-built scenario's NaN is refused too.
	s.Faults[1].Burst.Loss = math.NaN()
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "faults[1].burst.loss") {
		t.Errorf("NaN burst loss: %v", err)
	}
	s.Faults[1].Burst.Loss = 0.5
	s.Faults[1].Loss = math.NaN()
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "faults[1].loss") {
		t.Errorf("NaN loss: %v", err)
	}
}

// The reference operator takes an environment too (client-go's and Go's
// knobs, as the incident's fixed variant uses).
func TestReferenceOperatorEnv(t *testing.T) {
	s, err := Parse("env.yaml", []byte("name: x\noperator:\n  env: {HTTP2_READ_IDLE_TIMEOUT_SECONDS: \"1\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Reference() || s.Operator.Env["HTTP2_READ_IDLE_TIMEOUT_SECONDS"] != "1" {
		t.Fatalf("reference %v, env %v", s.Reference(), s.Operator.Env)
	}
}

// The incident pairs (scenarios/incident) load, and each fixed run
// differs from its incident only in the operator's environment: the fix
// is one change, not a milder scenario.
func TestIncidentPairsDifferOnlyInTheFix(t *testing.T) {
	for _, pair := range []string{"watch-lag", "flapping-link"} {
		inc, err := Load("incident/" + pair + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		fix, err := Load("incident/" + pair + "-fixed.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(inc.Operator.Env, fix.Operator.Env) {
			t.Errorf("%s: operator.env is the same in the incident and the fix: %v", pair, inc.Operator.Env)
		}
		a, b := *inc, *fix
		a.Operator.Env, a.Description, a.File = nil, "", ""
		b.Operator.Env, b.Name, b.Description, b.File = nil, a.Name, "", ""
		ea, err1 := Encode(&a)
		eb, err2 := Encode(&b)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if string(ea) != string(eb) {
			t.Errorf("%s: the pair differs beyond operator.env:\n%s\n---\n%s", pair, ea, eb)
		}
	}
}

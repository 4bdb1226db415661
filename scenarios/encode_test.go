package scenarios

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// roundTrip encodes s, loads the output, and fails unless it is s again.
func roundTrip(t *testing.T, s *Scenario) []byte {
	t.Helper()
	out, err := Encode(s)
	if err != nil {
		t.Fatalf("Encode(%s): %v", s.Name, err)
	}
	file := filepath.Join(t.TempDir(), "encoded.yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := Load(file)
	if err != nil {
		t.Fatalf("encoded %s does not load: %v\n%s", s.Name, err, out)
	}
	if d := cmp.Diff(s, back, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Scenario{}, "File")); d != "" {
		t.Fatalf("%s changed through Encode and Parse (-before +after):\n%s\n%s", s.Name, d, out)
	}
	return out
}

func TestEncodeRoundTripsEveryBuiltin(t *testing.T) {
	for _, n := range BuiltinNames() {
		t.Run(n, func(t *testing.T) {
			s, err := Builtin(n)
			if err != nil {
				t.Fatal(err)
			}
			out := roundTrip(t, s)
			if len(s.Faults) > 0 && !strings.Contains(string(out), "type: "+s.Faults[0].Type) {
				t.Errorf("fault type not written:\n%s", out)
			}
		})
	}
}

// probes are candidate non-zero values for a fault parameter, by kind; the
// first that the type's validation accepts is used.
var probes = map[reflect.Kind][]any{
	reflect.Float64: {0.25, 0.5, 2.0, 10.0},
	reflect.Int:     {3, 1, 100},
	reflect.Bool:    {true},
	reflect.Pointer: {&Burst{Every: Duration{10 * time.Second}, Length: DurationRange{Min: Duration{time.Second}, Max: Duration{3 * time.Second}}, Loss: 1}},
}

var durationProbes = []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, time.Second}

// validFault builds a fault of type typ whose every parameter is set (to its
// default or to a probe value its validation accepts), so that the round
// trip covers each parameter of each type, including types added to
// FaultTypes later.
func validFault(t *testing.T, typ string) Fault {
	t.Helper()
	ft := FaultTypes[typ]
	f := Fault{Type: typ, Start: Duration{time.Second}, Duration: Duration{2 * time.Second}}
	if ft.Defaults != nil {
		ft.Defaults(&f)
	}
	if typ == FaultFailpoint { // two string parameters that must agree
		f.Name, f.Term = "walBeforeSync", "sleep(200)"
	}
	fields := faultFields()
	valid := func() bool { return ft.Validate == nil || ft.Validate(&f, "faults[0]") == nil }
	for _, p := range ft.Params {
		fv := reflect.ValueOf(&f).Elem().FieldByIndex(fields[p])
		if !fv.IsZero() && valid() {
			continue
		}
		var cands []reflect.Value
		if fv.Type() == durationType {
			for _, d := range durationProbes {
				cands = append(cands, reflect.ValueOf(Duration{d}))
			}
		} else {
			for _, c := range probes[fv.Kind()] {
				cands = append(cands, reflect.ValueOf(c).Convert(fv.Type()))
			}
		}
		old := reflect.ValueOf(fv.Interface())
		set := false
		for _, c := range cands {
			fv.Set(c)
			if valid() {
				set = true
				break
			}
		}
		if !set {
			fv.Set(old)
		}
	}
	if !valid() {
		t.Fatalf("%s: cannot build a valid fault to encode (extend the probe values of this test): %v", typ, ft.Validate(&f, "faults[0]"))
	}
	for _, p := range ft.Params {
		if reflect.ValueOf(&f).Elem().FieldByIndex(fields[p]).IsZero() {
			t.Errorf("%s.%s: no probe value validates, so its encoding is not covered (extend the probes of this test)", typ, p)
		}
	}
	return f
}

func TestEncodeRoundTripsEveryFaultType(t *testing.T) {
	for _, typ := range FaultTypeNames() {
		t.Run(typ, func(t *testing.T) {
			f := validFault(t, typ)
			s, err := Parse("x.yaml", []byte("name: every-param\n"))
			if err != nil {
				t.Fatal(err)
			}
			after := f
			after.Start, after.AfterOps = Duration{}, 5
			s.Faults = []Fault{f, after}
			out := roundTrip(t, s)
			for _, p := range FaultTypes[typ].Params {
				if !strings.Contains(string(out), p+": ") {
					t.Errorf("parameter %s not written:\n%s", p, out)
				}
			}
			if !strings.Contains(string(out), "afterOps: 5") {
				t.Errorf("afterOps schedule not written:\n%s", out)
			}
		})
	}
}

func TestEncodeRefusesWhatCannotBeWritten(t *testing.T) {
	s, _ := Builtin("baseline")
	s.Kubelet.ReadyDelay.Distribution = "" // loads as the default, uniform
	if _, err := Encode(s); err == nil || !strings.Contains(err.Error(), "distribution") {
		t.Fatalf("an empty distribution encoded without error: %v", err)
	}
	s, _ = Builtin("baseline")
	s.Workload.Objects, s.Workload.DeleteObjects = 0, 0 // a zero written is a zero read
	out, err := Encode(s)
	if err != nil {
		t.Fatalf("objects: 0 did not encode: %v", err)
	}
	if back, err := Parse("b.yaml", out); err != nil || back.Workload.Objects != 0 {
		t.Fatalf("objects: 0 read back as %v (%v)", back, err)
	}
	s, _ = Builtin("wal-fsync-delay")
	s.Faults[0].Loss = 0.1 // a network-retransmit parameter
	if _, err := Encode(s); err == nil || !strings.Contains(err.Error(), "faults[0].loss: not a parameter of wal-fsync-delay") {
		t.Fatalf("foreign parameter encoded: %v", err)
	}
	s.Faults[0] = Fault{Type: "disk-full"}
	if _, err := Encode(s); err == nil || !strings.Contains(err.Error(), `unknown fault type "disk-full"`) {
		t.Fatalf("unknown fault type encoded: %v", err)
	}
}

func TestEncodeIsReadable(t *testing.T) {
	s, _ := Builtin("wal-fsync-delay")
	out, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"name: wal-fsync-delay\n",
		"  readyDelay: {distribution: uniform, min: 100ms, max: 500ms}\n",
		"  - {type: wal-fsync-delay, start: 5s, duration: 10s, delay: 100ms, probability: 1}\n",
		"  latency: {p50: 0s, p90: 0s, p99: 5s, max: 0s}\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

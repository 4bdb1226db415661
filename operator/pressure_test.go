package operator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/faults/gcpressure"
)

func TestParseGCPressure(t *testing.T) {
	g, err := ParseGCPressure("entries=5000,rate=20,after=1s,for=10s")
	if err != nil {
		t.Fatal(err)
	}
	want := GCPressure{Entries: 5000, Rate: 20, After: time.Second, For: 10 * time.Second}
	if *g != want {
		t.Fatalf("got %+v, want %+v", *g, want)
	}
	back, err := ParseGCPressure(g.String())
	if err != nil || *back != want {
		t.Fatalf("String %q does not read back: %+v, %v", g.String(), back, err)
	}
	for spec, msg := range map[string]string{
		"entries=10":                "rate must be > 0",
		"rate=2":                    "entries must be > 0",
		"entries=10,rate=2,size=3":  `unknown key "size"`,
		"entries=x,rate=2":          "entries",
		"entries=10,rate=2,for=-1s": "must not be negative",
		"entries":                   "not key=value",
	} {
		if _, err := ParseGCPressure(spec); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want one containing %q", spec, err, msg)
		}
	}
}

// The operator's own pressure window grows the heap (cycles run) and ends
// by itself after For.
func TestGCPressureRuns(t *testing.T) {
	g := &GCPressure{Entries: 2000, Rate: 50, For: 300 * time.Millisecond}
	var p *gcpressure.Pressure
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.run(context.Background(), func(started *gcpressure.Pressure) { p = started })
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pressure window did not end")
	}
	if p == nil || p.Cycles() == 0 {
		t.Fatalf("no growth cycle ran (pressure %v)", p)
	}
}

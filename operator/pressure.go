package operator

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/driftlab/driftlab/faults/gcpressure"
)

// GCPressure is a gc-assist-pressure window the operator runs on its own,
// without a harness on its standard input: on a real cluster, where Chaos
// Mesh's StressChaos can only add memory pressure from another process,
// this is how the operator's own heap grows (`driftlab operator
// --gc-pressure entries=N,rate=R,after=D,for=D`).
type GCPressure struct {
	Entries int           // map entries per growth cycle (gcpressure.Config)
	Rate    float64       // growth cycles per second
	After   time.Duration // delay from the operator's start
	For     time.Duration // how long; 0 means until the operator stops
}

// ParseGCPressure parses "entries=N,rate=R,after=D,for=D" (after and for
// optional; durations in Go syntax).
func ParseGCPressure(spec string) (*GCPressure, error) {
	g := &GCPressure{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("gc-pressure %q: %q is not key=value (want entries=N,rate=R[,after=D][,for=D])", spec, kv)
		}
		var err error
		switch k {
		case "entries":
			g.Entries, err = strconv.Atoi(v)
		case "rate":
			g.Rate, err = strconv.ParseFloat(v, 64)
		case "after":
			g.After, err = time.ParseDuration(v)
		case "for":
			g.For, err = time.ParseDuration(v)
		default:
			return nil, fmt.Errorf("gc-pressure %q: unknown key %q (known: entries, rate, after, for)", spec, k)
		}
		if err != nil {
			return nil, fmt.Errorf("gc-pressure %q: %s: %v", spec, k, err)
		}
	}
	switch {
	case g.Entries <= 0:
		return nil, fmt.Errorf("gc-pressure %q: entries must be > 0", spec)
	case g.Rate <= 0:
		return nil, fmt.Errorf("gc-pressure %q: rate must be > 0", spec)
	case g.After < 0 || g.For < 0:
		return nil, fmt.Errorf("gc-pressure %q: after and for must not be negative", spec)
	}
	return g, nil
}

// String is the flag form of g, which ParseGCPressure reads back.
func (g *GCPressure) String() string {
	return fmt.Sprintf("entries=%d,rate=%s,after=%s,for=%s", g.Entries, strconv.FormatFloat(g.Rate, 'g', -1, 64), g.After, g.For)
}

// run waits g.After, grows the heap for g.For (or until ctx ends) and stops.
// started, when not nil, is called with the running pressure.
func (g *GCPressure) run(ctx context.Context, started func(*gcpressure.Pressure)) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(g.After):
	}
	p := gcpressure.Start(gcpressure.Config{Entries: g.Entries, Rate: g.Rate})
	defer p.Stop()
	if started != nil {
		started(p)
	}
	if g.For == 0 {
		<-ctx.Done()
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(g.For):
	}
}

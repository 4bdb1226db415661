package kubelet

import (
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
)

func dist(kind string, lo, hi, mean time.Duration) scenarios.Distribution {
	return scenarios.Distribution{Distribution: kind, Min: scenarios.Duration{Duration: lo}, Max: scenarios.Duration{Duration: hi}, Mean: scenarios.Duration{Duration: mean}}
}

func TestDelayIsSeededAndInRange(t *testing.T) {
	s := Sampler{Dist: dist("uniform", 100*time.Millisecond, 500*time.Millisecond, 0), Seed: 3}
	distinct := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := s.Delay("kv-0-1", i)
		if d < 100*time.Millisecond || d >= 500*time.Millisecond {
			t.Fatalf("delay %s out of [100ms,500ms)", d)
		}
		if d != s.Delay("kv-0-1", i) {
			t.Fatal("same pod and incarnation gave different delays")
		}
		distinct[d] = true
	}
	if len(distinct) < 150 {
		t.Fatalf("only %d distinct delays in 200 draws", len(distinct))
	}
	other := Sampler{Dist: s.Dist, Seed: 4}
	if other.Delay("kv-0-1", 0) == s.Delay("kv-0-1", 0) && other.Delay("kv-0-1", 1) == s.Delay("kv-0-1", 1) {
		t.Fatal("seed does not change delays")
	}
}

func TestDelayDistributions(t *testing.T) {
	c := Sampler{Dist: dist("constant", 250*time.Millisecond, 250*time.Millisecond, 0), Seed: 1}
	if d := c.Delay("p", 0); d != 250*time.Millisecond {
		t.Fatalf("constant gave %s", d)
	}
	e := Sampler{Dist: dist("exponential", 10*time.Millisecond, 2*time.Second, 100*time.Millisecond), Seed: 1}
	var sum time.Duration
	for i := 0; i < 2000; i++ {
		d := e.Delay("p", i)
		if d < 10*time.Millisecond || d > 2*time.Second {
			t.Fatalf("exponential delay %s out of range", d)
		}
		sum += d
	}
	if mean := sum / 2000; mean < 90*time.Millisecond || mean > 130*time.Millisecond {
		t.Fatalf("exponential mean %s, want about 110ms", mean)
	}
}

// TestExponentialHugeMeanDoesNotOverflow (issue 17): a mean far beyond
// what a time.Duration holds once multiplied by a draw (1,000,000 h, the
// scenario format's limit ×1,389, as a Go-built scenario may set it)
// stays within [min, max]. The conversion before the cap overflowed to
// -2562047h, and the virtual backend panicked scheduling an event in the
// past.
func TestExponentialHugeMeanDoesNotOverflow(t *testing.T) {
	for _, c := range []struct{ lo, hi, mean time.Duration }{
		{0, time.Second, 1000000 * time.Hour},
		{10 * time.Millisecond, 720 * time.Hour, 1000000 * time.Hour},
		{0, time.Duration(1<<63 - 1), time.Duration(1<<63 - 1)},
	} {
		s := Sampler{Dist: dist("exponential", c.lo, c.hi, c.mean), Seed: 1}
		for i := 0; i < 1000; i++ {
			if d := s.Delay("p", i); d < c.lo || d > c.hi {
				t.Fatalf("mean %v, range [%v, %v]: draw %d is %v", c.mean, c.lo, c.hi, i, d)
			}
		}
	}
}

package fsyncfs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Delay is the latency added to each fsync. The fault is off when Base and
// Jitter are both zero (the zero Delay). Otherwise each fsync is delayed,
// with probability Probability, by Base plus a uniform random duration in
// [0, Jitter).
//
// Probability 0 means 1 (every fsync is delayed), so Delay{Base: 50 *
// time.Millisecond} delays every fsync by exactly 50 ms; to turn the fault off
// set the zero Delay. Probability must be in [0, 1].
type Delay struct {
	// Base is the fixed part of the delay.
	Base time.Duration
	// Jitter is the width of the uniform random part added to Base.
	Jitter time.Duration
	// Probability is the chance that one fsync is delayed; 0 means 1.
	Probability float64
}

// Off reports whether d injects nothing (Base and Jitter are zero).
func (d Delay) Off() bool { return d.Base <= 0 && d.Jitter <= 0 }

// Validate reports whether d is usable: no negative durations and a
// Probability in [0, 1].
func (d Delay) Validate() error {
	if d.Base < 0 || d.Jitter < 0 {
		return fmt.Errorf("fsyncfs: negative delay (base %v, jitter %v)", d.Base, d.Jitter)
	}
	if math.IsNaN(d.Probability) || d.Probability < 0 || d.Probability > 1 {
		return fmt.Errorf("fsyncfs: probability %v is not in [0, 1]", d.Probability)
	}
	return nil
}

// String describes d, for logs and reports: "off", "50ms",
// "10ms+[0,20ms)", "10ms+[0,20ms) p=0.7".
func (d Delay) String() string {
	if d.Off() {
		return "off"
	}
	s := d.Base.String()
	if d.Jitter > 0 {
		s += "+[0," + d.Jitter.String() + ")"
	}
	if d.Probability > 0 && d.Probability < 1 {
		s += fmt.Sprintf(" p=%g", d.Probability)
	}
	return s
}

// pick turns two uniform draws u, v in [0, 1) into one delay: u decides
// whether the fsync is delayed, v places it in the jitter window.
func (d Delay) pick(u, v float64) time.Duration {
	if d.Off() {
		return 0
	}
	p := d.Probability
	if p == 0 || p > 1 {
		p = 1
	}
	if u >= p {
		return 0
	}
	return d.Base + time.Duration(v*float64(d.Jitter))
}

// sampler draws delays from one PCG stream seeded explicitly. Each call
// consumes exactly two draws whatever the Delay (also when it is off), so the
// n-th fsync always gets the n-th pair of numbers: a run is reproducible from
// the seed and the order in which fsyncs arrive.
type sampler struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newSampler(seed uint64) *sampler {
	// The second PCG word is a fixed odd constant so that one uint64 names
	// the whole stream.
	return &sampler{rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

func (s *sampler) next(d Delay) time.Duration {
	s.mu.Lock()
	u, v := s.rng.Float64(), s.rng.Float64()
	s.mu.Unlock()
	return d.pick(u, v)
}

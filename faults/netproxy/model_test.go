package netproxy

import (
	"testing"
	"time"
)

func TestModelClosedForm(t *testing.T) {
	m := RetransmitModel{P: 0.1, MinRTO: 20 * time.Millisecond}
	// Without the cap, E = MinRTO*((1-P)/(1-2P) - 1) = 2.5 ms for P=0.1.
	if got, want := m.Mean(), 2500*time.Microsecond; !within(got, want, 1e-6, time.Microsecond) {
		t.Errorf("Mean = %v, want %v", got, want)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 0}, {0.9, 0}, {0.95, 20 * time.Millisecond}, {0.99, 20 * time.Millisecond},
		{0.995, 60 * time.Millisecond}, {0.9995, 140 * time.Millisecond}} {
		if got := m.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// The RTO cap: 3 losses with MinRTO 1s, MaxRTO 2s stall 1+2+2 s.
	if got := (RetransmitModel{P: 0.5, MinRTO: time.Second, MaxRTO: 2 * time.Second}).stallFor(3); got != 5*time.Second {
		t.Errorf("capped stall = %v, want 5s", got)
	}
	rt := m.Dist().Plus(m.Dist())
	if got := rt.Mean(); !within(got, 5*time.Millisecond, 1e-6, time.Microsecond) {
		t.Errorf("round-trip Mean = %v, want 5ms", got)
	}
	if got := rt.Quantile(0.9); got != 20*time.Millisecond {
		t.Errorf("round-trip p90 = %v, want 20ms", got)
	}
	var sum float64
	for _, a := range (RetransmitModel{P: 0.7}).Dist() {
		sum += a.Prob
	}
	if sum < 1-1e-12 || sum > 1+1e-12 {
		t.Errorf("probabilities sum to %v", sum)
	}
}

// TestSamplerMatchesModel checks the toxic's sampling function (the code the
// proxy runs) against the model on a million draws, without any network or
// timers: this is the statistical check of the model.
func TestSamplerMatchesModel(t *testing.T) {
	for _, m := range []RetransmitModel{
		{P: 0.1, MinRTO: 20 * time.Millisecond},
		{P: 0.3},
		{P: 0.05, MinRTO: time.Second, MaxRTO: 4 * time.Second},
	} {
		rng := lossRNG(42, 0, 0)
		const n = 1_000_000
		d := make([]time.Duration, n)
		for i := range d {
			_, d[i] = m.sample(rng)
		}
		// The mean of the P=0.3 distribution is dominated by rare long stalls
		// (its variance is large), hence the looser bound there.
		tol := 0.02
		if m.P >= 0.3 {
			tol = 0.05
		}
		if got, want := mean(d), m.Mean(); !within(got, want, tol, 0) {
			t.Errorf("%+v: sample mean %v, model %v", m, got, want)
		}
		for _, q := range []float64{0.5, 0.8, 0.9, 0.97, 0.99} {
			if onStep(m.Dist(), q) {
				continue // a q on a step of the CDF has no stable sample quantile
			}
			if got, want := quantile(d, q), m.Quantile(q); got != want {
				t.Errorf("%+v: sample q%.2f %v, model %v", m, q, got, want)
			}
		}
		t.Logf("P=%.2f MinRTO=%v: model mean %v, sample mean %v (1e6 draws)", m.P, m.norm().MinRTO, m.Mean(), mean(d))
	}
}

// onStep reports whether q is within 0.002 of a value of d's CDF.
func onStep(d Distribution, q float64) bool {
	var c float64
	for _, a := range d {
		c += a.Prob
		if c > q-0.002 && c < q+0.002 {
			return true
		}
	}
	return false
}

package netproxy

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Linux defaults for the retransmission timeout (TCP_RTO_MIN, TCP_RTO_MAX).
const (
	// DefaultMinRTO is the first retransmission timeout, Linux's minimum RTO.
	DefaultMinRTO = 200 * time.Millisecond
	// DefaultMaxRTO caps the doubled retransmission timeout, as Linux does.
	DefaultMaxRTO = 120 * time.Second
	// MaxRetransmits bounds the consecutive losses of one chunk (Linux's
	// tcp_retries2 default is 15): the chunk is delivered after the 15th
	// stall instead of the connection being killed.
	MaxRetransmits = 15
)

// RetransmitModel describes the retransmit fault: each chunk is lost with
// probability P, independently, and is delivered after one RTO stall per
// consecutive loss; the RTO starts at MinRTO and doubles per loss, capped at
// MaxRTO. With k losses the extra delay is sum_{i<k} min(MinRTO*2^i, MaxRTO)
// (MinRTO*(2^k-1) without the cap) and P(k) = P^k(1-P) for k < MaxRetransmits
// (P(MaxRetransmits) = P^MaxRetransmits). This is the delay of one chunk that
// is alone in flight, as in a request/response exchange; in a stream a stalled
// chunk also holds back the chunks behind it (head-of-line blocking), which
// the model does not include. Zero MinRTO/MaxRTO mean the Linux defaults.
type RetransmitModel struct {
	// P is the probability that a chunk (or its retransmission) is lost, in [0, 1).
	P float64
	// MinRTO is the first retransmission timeout.
	MinRTO time.Duration
	// MaxRTO caps the doubled retransmission timeout.
	MaxRTO time.Duration
}

// Atom is one value of a discrete delay distribution and its probability.
type Atom struct {
	// Delay is the extra delay.
	Delay time.Duration
	// Prob is the probability of Delay.
	Prob float64
}

// Distribution is a discrete distribution of extra delay: atoms sorted by
// Delay, with distinct delays and probabilities summing to 1.
type Distribution []Atom

func (m RetransmitModel) norm() RetransmitModel {
	if m.MinRTO <= 0 {
		m.MinRTO = DefaultMinRTO
	}
	if m.MaxRTO <= 0 {
		m.MaxRTO = DefaultMaxRTO
	}
	if m.MaxRTO < m.MinRTO {
		m.MaxRTO = m.MinRTO
	}
	return m
}

// stallFor returns the total stall of a chunk lost k times in a row.
func (m RetransmitModel) stallFor(k int) time.Duration {
	m = m.norm()
	var total time.Duration
	rto := m.MinRTO
	for range k {
		total += rto
		rto = min(2*rto, m.MaxRTO)
	}
	return total
}

// lossesWithin is how many losses a chunk had after waiting d: the number
// of retransmission timers (MinRTO, doubling up to MaxRTO) that fired.
func (m RetransmitModel) lossesWithin(d time.Duration) int {
	m = m.norm()
	k := 0
	var total time.Duration
	rto := m.MinRTO
	for k < MaxRetransmits && total+rto <= d {
		total += rto
		rto = min(2*rto, m.MaxRTO)
		k++
	}
	return k
}

// sample draws the number of consecutive losses of one chunk and its stall
// from rng, without bursts: Retransmit, the function the toxic runs.
func (m RetransmitModel) sample(rng *rand.Rand) (losses int, stall time.Duration) {
	return m.Retransmit(rng, nil, 0)
}

// Dist returns the distribution of the extra delay of one chunk.
func (m RetransmitModel) Dist() Distribution {
	m = m.norm()
	p := math.Max(0, math.Min(m.P, 1))
	d := make(Distribution, 0, MaxRetransmits+1)
	pk := 1.0 // P^k
	for k := 0; k <= MaxRetransmits; k++ {
		prob := pk * (1 - p)
		if k == MaxRetransmits {
			prob = pk
		}
		if prob > 0 {
			d = append(d, Atom{Delay: m.stallFor(k), Prob: prob})
		}
		pk *= p
	}
	return d
}

// Mean returns the expected extra delay of one chunk.
func (m RetransmitModel) Mean() time.Duration { return m.Dist().Mean() }

// Quantile returns the q-quantile (0 <= q <= 1) of the extra delay of one
// chunk: the smallest delay d with P(delay <= d) >= q.
func (m RetransmitModel) Quantile(q float64) time.Duration { return m.Dist().Quantile(q) }

// Mean returns the expected delay of d.
func (d Distribution) Mean() time.Duration {
	var s float64
	for _, a := range d {
		s += float64(a.Delay) * a.Prob
	}
	return time.Duration(math.Round(s))
}

// Quantile returns the smallest delay x of d with P(delay <= x) >= q. A
// relative slack of 1e-9 absorbs rounding of the cumulative sum, so a q that
// falls exactly on a step (P=0.1, q=0.9) returns the lower delay.
func (d Distribution) Quantile(q float64) time.Duration {
	var c float64
	for _, a := range d {
		c += a.Prob
		if c >= q-1e-9 {
			return a.Delay
		}
	}
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1].Delay
}

// Plus returns the distribution of the sum of independent delays drawn from
// d and e, for example the two chunks of a round trip when the fault is set
// in both directions.
func (d Distribution) Plus(e Distribution) Distribution {
	m := map[time.Duration]float64{}
	for _, a := range d {
		for _, b := range e {
			m[a.Delay+b.Delay] += a.Prob * b.Prob
		}
	}
	out := make(Distribution, 0, len(m))
	for k, v := range m {
		out = append(out, Atom{Delay: k, Prob: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Delay < out[j].Delay })
	return out
}

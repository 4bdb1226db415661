package netproxy

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"
)

// Burst describes bursty loss: blackouts of a link, one in each period of
// Every, of a length drawn uniformly from [MinLength, MaxLength] and at an
// offset drawn uniformly so that it ends within its period. Inside a
// blackout every transmission (and retransmission) is lost with
// probability Loss; outside, the fault's own loss probability applies.
// Real links lose packets in bursts (a congested queue, a flapping route,
// a Wi-Fi or cloud-network hiccup), and a burst is what turns TCP's RTO
// backoff into stalls of seconds: independent losses rarely hit the same
// segment five times in a row, a one-second blackout always does.
type Burst struct {
	// Every is the period: one blackout per period.
	Every time.Duration
	// MinLength and MaxLength bound the length of a blackout.
	MinLength, MaxLength time.Duration
	// Loss is the loss probability inside a blackout, in (0, 1].
	Loss float64
	// Established limits each blackout to the connections open when it
	// began: a connection opened during it passes. That is a middlebox
	// losing the state of its established flows (a conntrack or NAT
	// gateway failover): their packets are dropped while new flows work,
	// so a client learns of it only from its own timeouts.
	Established bool
}

// Validate checks the burst's parameters.
func (b Burst) Validate() error {
	switch {
	case b.Every <= 0:
		return fmt.Errorf("netproxy: burst period %v is not positive", b.Every)
	case b.MinLength <= 0 || b.MaxLength < b.MinLength:
		return fmt.Errorf("netproxy: burst length %v..%v: need 0 < min <= max", b.MinLength, b.MaxLength)
	case b.MaxLength >= b.Every:
		return fmt.Errorf("netproxy: burst length %v is not shorter than its period %v", b.MaxLength, b.Every)
	case !(b.Loss > 0 && b.Loss <= 1): // also refuses NaN
		return fmt.Errorf("netproxy: burst loss %v not in (0, 1]", b.Loss)
	}
	return nil
}

// BurstStream names the random stream (workload.Stream, derived from the
// run's seed) that the burst schedule of fault i of a scenario is drawn
// from. The local backend's proxy and the virtual backend's link model
// both use it, so a seed gives both the same blackouts.
func BurstStream(fault int) string {
	return "fault/" + strconv.Itoa(fault) + "/network-retransmit/burst"
}

// BurstSchedule is a seeded schedule of blackouts, in time since the
// fault's window started. Blackout k depends only on the two keys drawn at
// construction and on k, so the schedule can be asked about any time in
// any order, from any goroutine, and replays exactly from the seed.
type BurstSchedule struct {
	b      Burst
	k1, k2 uint64
	// opened is when the connection this view is for was opened, in time
	// since the window started (ForConn); with Established, blackouts
	// that began before it spare the connection.
	opened time.Duration
}

// NewBurstSchedule draws the schedule's keys from r (two draws); b must be
// valid.
func NewBurstSchedule(b Burst, r *rand.Rand) (*BurstSchedule, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &BurstSchedule{b: b, k1: r.Uint64(), k2: r.Uint64()}, nil
}

// Burst returns the schedule's parameters.
func (s *BurstSchedule) Burst() Burst { return s.b }

// ForConn returns the schedule as one connection opened at opened (time
// since the window started) sees it: with Established, a blackout that
// began before the connection was opened does not touch it. Without
// Established it is the schedule itself.
func (s *BurstSchedule) ForConn(opened time.Duration) *BurstSchedule {
	if s == nil || !s.b.Established {
		return s
	}
	c := *s
	c.opened = opened
	return &c
}

// Blackout is one blackout: [From, To) in time since the window started.
type Blackout struct {
	From, To time.Duration
}

// Len is the blackout's length.
func (b Blackout) Len() time.Duration { return b.To - b.From }

// blackout returns the blackout of period k.
func (s *BurstSchedule) blackout(k int64) Blackout {
	p := rand.NewPCG(s.k1, s.k2^splitmix(uint64(k)))
	span := int64(s.b.MaxLength - s.b.MinLength)
	length := s.b.MinLength + time.Duration(uniform(p.Uint64(), span))
	off := time.Duration(uniform(p.Uint64(), int64(s.b.Every-length)))
	from := time.Duration(k)*s.b.Every + off
	return Blackout{From: from, To: from + length}
}

// uniform maps a random word onto [0, n] (n >= 0) without modulo bias
// worth speaking of (n is at most a month of nanoseconds, 2^52).
func uniform(u uint64, n int64) int64 {
	if n <= 0 {
		return 0
	}
	hi, _ := bits.Mul64(u, uint64(n)+1)
	return int64(hi)
}

// At reports whether t (time since the window started) falls in a
// blackout, and the loss probability there. A blackout never crosses its
// period's end, so only period t/Every can hold t.
func (s *BurstSchedule) At(t time.Duration) (loss float64, in bool) {
	if s == nil || t < 0 {
		return 0, false
	}
	b := s.blackout(int64(t / s.b.Every))
	if t >= b.From && t < b.To && (!s.b.Established || b.From >= s.opened) {
		return s.b.Loss, true
	}
	return 0, false
}

// Blackouts lists the blackouts that start before end.
func (s *BurstSchedule) Blackouts(end time.Duration) []Blackout {
	var out []Blackout
	for k := int64(0); time.Duration(k)*s.b.Every < end; k++ {
		if b := s.blackout(k); b.From < end {
			out = append(out, b)
		}
	}
	return out
}

// Retransmit draws the fate of one chunk whose first transmission is at
// time at since the window started: each transmission is lost with the
// model's probability P, or, when it is sent inside a blackout of burst
// (nil: no bursts), with the burst's loss; each loss waits one RTO
// (MinRTO, doubling per consecutive loss up to MaxRTO) and the next
// transmission is checked against the schedule at the time it is sent.
// So a chunk first sent at the start of a 2 s blackout is sent at 0, 0.2,
// 0.6, 1.4 and 3.0 s and arrives 3 s late, as TCP's backed-off RTO makes
// a connection wait past the end of an outage. At most MaxRetransmits
// losses. A random number is drawn only for a probability strictly
// between 0 and 1, so without bursts the draws are those of
// independent loss. The toxic and the virtual backend's link model both
// use this function, so they cannot drift apart.
func (m RetransmitModel) Retransmit(rng *rand.Rand, burst *BurstSchedule, at time.Duration) (losses int, stall time.Duration) {
	m = m.norm()
	rto := m.MinRTO
	for losses < MaxRetransmits {
		p := m.P
		if l, in := burst.At(at + stall); in {
			p = l
		}
		if !lost(rng, p) {
			break
		}
		losses++
		stall += rto
		rto = min(2*rto, m.MaxRTO)
	}
	return losses, stall
}

// lost reports whether a transmission with loss probability p is lost.
func lost(rng *rand.Rand, p float64) bool {
	switch {
	case p <= 0 || math.IsNaN(p):
		return false
	case p >= 1:
		return true
	}
	return rng.Float64() < p
}

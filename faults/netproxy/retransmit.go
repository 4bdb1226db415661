package netproxy

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// RetransmitToxicType is the name under which [RetransmitToxic] is registered
// in toxiproxy's (process-global) toxic registry.
const RetransmitToxicType = "retransmit"

func init() {
	toxics.Register(RetransmitToxicType, new(RetransmitToxic))
	toxics.Register(shortQueueToxicType, new(shortQueueToxic))
}

// RetransmitToxic is the toxiproxy toxic behind [Proxy.SetRetransmit]. Each
// chunk it receives is lost with probability P (inside a blackout of the
// proxy's burst schedule, with the burst's loss), then "retransmitted" after
// an RTO stall, possibly lost again (see [RetransmitModel.Retransmit]); it is delivered
// its total stall after its StreamChunk timestamp (when the proxy read it,
// or when a previous latency toxic released it), and never before the chunk
// in front of it (order is preserved, as with TCP's head-of-line blocking).
// On delivery the timestamp is set to the delivery time, so a toxic after
// this one does not absorb the stall.
// toxiproxy fills the exported fields from JSON; one instance serves every
// connection of one direction, and each connection gets its own random
// stream (see NewState).
type RetransmitToxic struct {
	// P is the loss probability of each transmission, in [0, 1).
	P float64 `json:"p"`
	// MinRTONs is the first RTO in nanoseconds (0: DefaultMinRTO).
	MinRTONs int64 `json:"min_rto_ns"`
	// MaxRTONs is the RTO cap in nanoseconds (0: DefaultMaxRTO).
	MaxRTONs int64 `json:"max_rto_ns"`
	// Seed seeds the PCG generator.
	Seed uint64 `json:"seed"`
	// Dir is the toxiproxy direction (0 upstream, 1 downstream); it selects
	// the PCG stream together with the connection number.
	Dir uint8 `json:"dir"`
	// ProxyID identifies the owning Proxy for statistics (0: none).
	ProxyID uint64 `json:"proxy_id"`

	conns atomic.Uint64 // connections seen, numbers the PCG streams
}

// retransmitState is the per-link state; it survives interrupts (toxiproxy
// keeps ToxicStub.State when it restarts a toxic).
type retransmitState struct {
	rng       *rand.Rand
	shared    *proxyShared
	stats     *dirStats
	pending   *stream.StreamChunk // chunk being stalled
	deliverAt time.Time
	sentAt    time.Time // first transmission of pending
	losses    int       // losses pending's stall is made of
	lastOut   time.Time // when the last chunk was delivered
	opened    time.Time // when the link started (or the toxic was added to it)
}

// lossRNG returns the generator of connection number conn (0-based, in the
// order links started or the toxic was added) in direction dir.
func lossRNG(seed uint64, dir uint8, conn uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, splitmix(uint64(dir)<<56^conn)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (t *RetransmitToxic) model() RetransmitModel {
	return RetransmitModel{P: t.P, MinRTO: time.Duration(t.MinRTONs), MaxRTO: time.Duration(t.MaxRTONs)}
}

// GetBufferSize lets up to 1024 chunks queue behind a stalled one, so the
// sender is not throttled by the stall (a TCP sender keeps sending within
// its window).
func (t *RetransmitToxic) GetBufferSize() int { return 1024 }

// ShortQueueChunks is how many chunks may queue behind a stalled one with
// Options.ShortQueue.
const ShortQueueChunks = 4

// shortQueueToxicType is the retransmit toxic with a short queue.
// toxiproxy asks a toxic for its buffer size before it reads the toxic's
// attributes, so the size is a property of the registered type.
const shortQueueToxicType = "retransmit-short-queue"

// shortQueueToxic is RetransmitToxic with ShortQueueChunks of queue.
type shortQueueToxic struct{ RetransmitToxic }

// GetBufferSize is ShortQueueChunks.
func (t *shortQueueToxic) GetBufferSize() int { return ShortQueueChunks }

// NewState gives each link (connection and direction) its own PCG stream.
func (t *RetransmitToxic) NewState() interface{} {
	n := t.conns.Add(1) - 1
	sh := lookupShared(t.ProxyID)
	return &retransmitState{rng: lossRNG(t.Seed, t.Dir, n), shared: sh, stats: sh.dir(t.Dir), opened: time.Now()}
}

// Pipe moves chunks from stub.Input to stub.Output, stalling lost ones. On
// interrupt a stalled chunk stays in the state and its stall resumes when
// toxiproxy restarts the toxic; Cleanup flushes it when the toxic is removed.
func (t *RetransmitToxic) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*retransmitState)
	if st == nil { // defensive: toxiproxy always sets State for StatefulToxic
		st = t.NewState().(*retransmitState)
		stub.State = st
	}
	m := t.model()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if st.pending != nil {
			if !waitUntil(st.deliverAt, stub.Interrupt, &timer) {
				return
			}
			// The next toxic (or link writer) sees the chunk as sent now, so
			// a latency toxic after this one does not absorb the stall.
			// Once sent, the chunk is the next toxic's, which may restamp
			// it (a latency toxic does): the time is kept apart.
			sent := time.Now()
			st.pending.Timestamp = sent
			select {
			case stub.Output <- st.pending:
				st.lastOut = sent
				st.stats.add(st.losses, st.deliverAt.Sub(st.sentAt))
				st.pending = nil
			case <-stub.Interrupt:
				return
			}
			continue
		}
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			sent := c.Timestamp
			var sched *BurstSchedule
			var at time.Duration
			if b := st.shared.burstNow(); b != nil {
				// A chunk that waited behind a stalled one is first
				// (re)sent when the link delivers again: TCP resends the
				// queue after the head segment got through, with the
				// backed-off RTO if it is lost again.
				if st.lastOut.After(sent) {
					sent = st.lastOut
				}
				sched, at = b.sched.ForConn(b.openedAt(st.opened)), sent.Sub(b.origin)
			}
			losses, stall := m.Retransmit(st.rng, sched, at)
			// Counted when delivered: a stall cut short by the fault's
			// removal counts for what it lasted (Cleanup).
			st.pending, st.sentAt, st.losses, st.deliverAt = c, sent, losses, sent.Add(stall)
		}
	}
}

// Cleanup flushes a stalled chunk when the toxic is removed, so no data is
// lost and the stream stays intact, and hands on what queued behind it.
// A link whose next stage takes nothing within cleanupWrite has lost its
// writer (the peer closed the connection, as a client does that gave up on
// a dead flow): the stub is closed, which ends the link, instead of
// toxiproxy waiting 5 s for each chunk nobody will read.
func (t *RetransmitToxic) Cleanup(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*retransmitState)
	if st != nil && st.pending != nil {
		now := time.Now()
		// The stall ends now: it counts the time it lasted and the losses
		// whose retransmission timer had fired by then.
		end := now
		if st.deliverAt.Before(end) {
			end = st.deliverAt
		}
		waited := max(end.Sub(st.sentAt), 0)
		st.stats.add(min(st.losses, t.model().lossesWithin(waited)), waited)
		st.pending.Timestamp = now
		c := st.pending
		st.pending = nil
		if stub.WriteOutput(c, cleanupWrite) != nil {
			stub.Close()
			return
		}
	}
	for {
		select {
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if stub.WriteOutput(c, cleanupWrite) != nil {
				stub.Close()
				return
			}
		default:
			return
		}
	}
}

// cleanupWrite is how long Cleanup waits for the next stage to take a
// chunk before it takes the link for dead. A live link's next stage takes
// it at once (its writer reads its channel, or the next toxic's buffer has
// room).
const cleanupWrite = 200 * time.Millisecond

// RetransmitStats counts what the retransmit toxic injected in one direction
// since the proxy was created.
type RetransmitStats struct {
	// Chunks is the number of chunks that passed the toxic.
	Chunks uint64
	// Retransmits is the number of simulated losses (RTO stalls).
	Retransmits uint64
	// Stall is the total injected stall.
	Stall time.Duration
	// LongStalls counts chunks stalled for at least LongStall: what a
	// client sees as a frozen connection.
	LongStalls uint64
	// MaxStall is the longest stall of one chunk since the proxy was
	// created or ResetMaxStall was called.
	MaxStall time.Duration
}

// LongStall is the stall from which RetransmitStats counts a chunk in
// LongStalls.
const LongStall = time.Second

type dirStats struct {
	chunks, retransmits, long atomic.Uint64
	stall, maxStall           atomic.Int64
}

func (s *dirStats) add(losses int, stall time.Duration) {
	if s == nil {
		return
	}
	s.chunks.Add(1)
	s.retransmits.Add(uint64(losses))
	s.stall.Add(int64(stall))
	if stall >= LongStall {
		s.long.Add(1)
	}
	for {
		m := s.maxStall.Load()
		if int64(stall) <= m || s.maxStall.CompareAndSwap(m, int64(stall)) {
			break
		}
	}
}

func (s *dirStats) snapshot() RetransmitStats {
	return RetransmitStats{Chunks: s.chunks.Load(), Retransmits: s.retransmits.Load(), Stall: time.Duration(s.stall.Load()),
		LongStalls: s.long.Load(), MaxStall: time.Duration(s.maxStall.Load())}
}

// proxyShared is what a proxy shares with its toxics: statistics per
// direction and the burst schedule in force.
type proxyShared struct {
	stats [2]dirStats
	burst atomic.Pointer[burstRef]
}

// burstRef is a burst schedule and the instant its time zero is.
type burstRef struct {
	sched  *BurstSchedule
	origin time.Time
	// added is when the toxic was in place on every open connection (Unix
	// nanoseconds; 0 while it is being added): a link whose state was
	// made before then was open before the fault.
	added atomic.Int64
}

// openedAt is when a link whose toxic state was made at made was opened,
// in the schedule's time: before any blackout for a connection that was
// open when the fault was set.
func (b *burstRef) openedAt(made time.Time) time.Duration {
	if a := b.added.Load(); a == 0 || made.UnixNano() <= a {
		return math.MinInt64
	}
	return made.Sub(b.origin)
}

func (sh *proxyShared) dir(d uint8) *dirStats {
	if sh == nil || d > 1 {
		return nil
	}
	return &sh.stats[d]
}

func (sh *proxyShared) burstNow() *burstRef {
	if sh == nil {
		return nil
	}
	return sh.burst.Load()
}

// sharedRegistry maps a proxy id to what it shares with its toxics:
// toxics are built by toxiproxy from JSON, so they find their proxy by id.
var sharedRegistry sync.Map // uint64 -> *proxyShared

func lookupShared(id uint64) *proxyShared {
	v, ok := sharedRegistry.Load(id)
	if !ok {
		return nil
	}
	return v.(*proxyShared)
}

// spinWindow is how long before a deadline waitUntil stops sleeping on a
// timer and yields in a loop instead: when the Go runtime is idle it sleeps
// in epoll with millisecond resolution, so a timer fires up to about 1 ms
// late, which would add a bias of about 0.5 ms to every stall. Stalls are
// rare (one per lost chunk, each at least MinRTO long), so the spinning costs
// little CPU.
const spinWindow = 1500 * time.Microsecond

// waitUntil waits until deadline; it returns false if interrupt fires first.
func waitUntil(deadline time.Time, interrupt <-chan struct{}, timer **time.Timer) bool {
	if d := time.Until(deadline) - spinWindow; d > 0 {
		if *timer == nil {
			*timer = time.NewTimer(d)
		} else {
			(*timer).Reset(d)
		}
		select {
		case <-(*timer).C:
		case <-interrupt:
			return false
		}
	}
	for time.Now().Before(deadline) {
		select {
		case <-interrupt:
			return false
		default:
		}
		runtime.Gosched()
	}
	return true
}

package virtual

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/driftlab/driftlab/sim/workload"
)

// HarnessBugPrefix starts the message of every panic raised when one of the
// virtual backend's own invariants breaks. Such a panic is a bug in driftlab,
// never a finding about the operator under test.
const HarnessBugPrefix = "driftlab-harness-bug:"

// harnessBug panics with HarnessBugPrefix.
func harnessBug(format string, args ...any) {
	panic(HarnessBugPrefix + " virtual: " + fmt.Sprintf(format, args...))
}

// event is one entry of the kernel's agenda. Events run in (at, seq) order:
// seq is the order in which they were scheduled, so two events due at the
// same instant run in the order they were created.
//
// An event is either fn() or cfn(c): commit deliveries, most of the
// events, pass their commit as data to a function made once per receiver
// instead of allocating a closure each.
type event struct {
	at  time.Duration
	seq uint64
	fn  func()
	cfn func(*commit)
	c   *commit
}

func (a *event) before(b *event) bool {
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

// kernel is a single-threaded discrete-event scheduler with a virtual clock
// and named seeded random streams. Nothing in it reads the wall clock.
type kernel struct {
	now     time.Duration
	seq     uint64
	agenda  []event // binary min-heap by (at, seq)
	seed    uint64
	streams map[string]*rand.Rand
	ran     int // events run so far
	stopped bool
}

func newKernel(seed uint64) *kernel {
	return &kernel{seed: seed, streams: map[string]*rand.Rand{}, agenda: make([]event, 0, 256)}
}

// at schedules fn at virtual time t, which must not lie in the past.
func (k *kernel) at(t time.Duration, fn func()) {
	k.push(event{at: t, fn: fn})
}

// atCommit schedules fn(c) at virtual time t, which must not lie in the
// past.
func (k *kernel) atCommit(t time.Duration, fn func(*commit), c *commit) {
	k.push(event{at: t, cfn: fn, c: c})
}

// push adds e to the agenda with the next sequence number.
func (k *kernel) push(e event) {
	t := e.at
	if t < k.now {
		harnessBug("event scheduled at %v, before the current time %v", t, k.now)
	}
	k.seq++
	e.seq = k.seq
	k.agenda = append(k.agenda, e)
	// sift up: move parents down into the hole, then place e once
	h := k.agenda
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !e.before(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

// after schedules fn d after now.
func (k *kernel) after(d time.Duration, fn func()) { k.at(k.now+d, fn) }

func (k *kernel) pop() event {
	h := k.agenda
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h[n] = event{}
	h = h[:n]
	// sift down: move the smaller child up into the hole until last fits
	i := 0
	for n > 0 {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	if n > 0 {
		h[i] = last
	}
	k.agenda = h
	return top
}

// stream returns the named random stream, derived from the run's seed with
// workload.Stream: adding draws to one stream never shifts another.
func (k *kernel) stream(name string) *rand.Rand {
	r := k.streams[name]
	if r == nil {
		r = workload.Stream(k.seed, "virtual/"+name)
		k.streams[name] = r
	}
	return r
}

// run executes events in order until the agenda is empty, stop is called,
// or limit events have run (limit <= 0: no limit). It reports whether it
// stopped because of the limit.
func (k *kernel) run(limit int) (exhausted bool) {
	for len(k.agenda) > 0 && !k.stopped {
		if limit > 0 && k.ran >= limit {
			return true
		}
		e := k.pop()
		if e.at < k.now {
			harnessBug("time went backwards: event at %v after %v", e.at, k.now)
		}
		k.now = e.at
		k.ran++
		if e.cfn != nil {
			e.cfn(e.c)
		} else {
			e.fn()
		}
	}
	return false
}

// stop ends run after the current event.
func (k *kernel) stop() { k.stopped = true }

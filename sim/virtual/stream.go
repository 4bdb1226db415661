package virtual

import (
	"math"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// recordStream checks the invariants (invariant.Checker), hashes the trace
// and counts the records of a run on a second goroutine while the run goes
// on, so that on a machine with a second core a run ends about when its
// last event does.
//
// A record is never made with a time before the kernel's clock (world.record
// enforces it), so once the clock is at t, every record already made with
// a time before t is final: no later record sorts before it. Every
// streamBatch records the run hands the records made so far and its clock
// to the checking goroutine, which sorts the new ones, with those it held
// back before, by (time, order made), takes those before the clock and
// holds back the rest. What it takes, in order, is exactly the stable sort
// of all records by time.
//
// The two goroutines share the run's record slice without a lock: the run
// only appends, past the length it handed over, and the checker only reads
// below it; an append that moves the slice leaves the old array, which the
// checker may still be reading, unchanged.
type recordStream struct {
	ch   chan streamChunk
	done chan struct{}
	// handed counts the records handed over so far (the run's side).
	handed int
	closed bool

	// The checking goroutine's side: out is the sorted records so far;
	// scanned counts the records with a key in out or in held.
	out     []history.Record
	scanned int
	held    []recordKey
	keys    []recordKey
	chk     *invariant.Checker
	th      *traceHasher
	counts  report.Counter
	// panicked is what the checking goroutine panicked with (re-raised in
	// the run's goroutine by finish).
	panicked any
}

// streamChunk is the run's records so far and its clock: those before at
// are final.
type streamChunk struct {
	records []history.Record
	at      time.Duration
}

// streamBatch is how many new records make a chunk.
const streamBatch = 512

// newRecordStream starts the checking goroutine; out is where it sorts
// the records to (reused from an earlier run).
func newRecordStream(out []history.Record, inv scenarios.Invariants) *recordStream {
	st := &recordStream{out: out[:0], ch: make(chan streamChunk, 64), done: make(chan struct{})}
	go st.consume(inv)
	return st
}

// consume sets up the check, the hash and the counts, on the checking
// goroutine so that the run starts at once, and takes chunks until the
// run closes the channel.
func (st *recordStream) consume(inv scenarios.Invariants) {
	defer close(st.done)
	st.chk, st.th, st.counts = invariant.NewChecker(inv), newTraceHasher(), report.NewCounter()
	defer func() {
		if p := recover(); p != nil {
			st.panicked = p
			for range st.ch { // let the run finish and report it
			}
		}
	}()
	for c := range st.ch {
		st.take(c)
	}
}

// take sorts the chunk's new records with the held ones and checks,
// hashes and counts those before the chunk's clock.
func (st *recordStream) take(c streamChunk) {
	keys := append(st.keys[:0], st.held...)
	for i := st.scanned; i < len(c.records); i++ {
		keys = append(keys, recordKey{c.records[i].T, int32(i)})
	}
	st.scanned = len(c.records)
	sortKeys(keys) // held keys first: ties keep the order records were made
	n := 0
	for n < len(keys) && keys[n].t < c.at {
		n++
	}
	for _, k := range keys[:n] {
		st.out = append(st.out, c.records[k.i])
		r := &st.out[len(st.out)-1]
		st.chk.Add(r)
		st.th.add(r)
		st.counts.Add(r)
	}
	st.held = append(st.held[:0], keys[n:]...)
	st.keys = keys
}

// made is called after each record is made, with all records so far and
// the kernel's clock. A world without a stream (a model test's) keeps its
// records only.
func (st *recordStream) made(records []history.Record, now time.Duration) {
	if st != nil && len(records)-st.handed >= streamBatch {
		st.ch <- streamChunk{records[:len(records):len(records)], now}
		st.handed = len(records)
	}
}

// finish hands over the rest and waits for the check: the outcome, the
// trace hash, the counts of record kinds and all records in time order.
func (st *recordStream) finish(records []history.Record) (*invariant.Outcome, []byte, report.Counter, []history.Record) {
	if !st.closed {
		st.ch <- streamChunk{records[:len(records):len(records)], math.MaxInt64}
	}
	st.stop()
	if st.panicked != nil {
		panic(st.panicked)
	}
	return st.chk.Finish(), st.th.sum(), st.counts, st.out
}

// stop ends the checking goroutine and waits for it (also when the run
// ends early).
func (st *recordStream) stop() {
	if !st.closed {
		st.closed = true
		close(st.ch)
	}
	<-st.done
}

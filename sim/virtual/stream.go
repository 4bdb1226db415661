package virtual

import (
	"math"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
)

// recordStream hands a run's records, in time order, to a second
// goroutine that checks the invariants (invariant.Checker) and hashes the
// trace while the run goes on, so that on a machine with a second core a
// run ends about when its last event does.
//
// A record is never made with a time before the kernel's clock (world.record
// enforces it), so once the clock is at t, every record already made with
// a time before t is final: no later record sorts before it. Every
// streamBatch records, flush sorts the records made since the last flush,
// with those held back then, by (time, order made), hands over those
// before the clock and holds back the rest. The concatenation of what it
// hands over is exactly the stable sort of all records by time, what
// sortedInto gives.
type recordStream struct {
	// out is the sorted records handed over so far.
	out []history.Record
	// scanned counts the records (in the order made) with a key in out
	// or in held.
	scanned int
	held    []recordKey
	keys    []recordKey
	ch      chan []history.Record
	done    chan struct{}
	closed  bool
	chk     *invariant.Checker
	th      *traceHasher
	// panicked is what the checking goroutine panicked with (re-raised in
	// the run's goroutine by finish).
	panicked any
}

// streamBatch is how many new records make a flush.
const streamBatch = 512

func newRecordStream(out []history.Record, inv scenarios.Invariants) *recordStream {
	st := &recordStream{out: out[:0], ch: make(chan []history.Record, 64), done: make(chan struct{}),
		chk: invariant.NewChecker(inv), th: newTraceHasher()}
	go st.consume()
	return st
}

func (st *recordStream) consume() {
	defer close(st.done)
	defer func() {
		if p := recover(); p != nil {
			st.panicked = p
			for range st.ch { // let the run finish and report it
			}
		}
	}()
	for batch := range st.ch {
		for i := range batch {
			st.chk.Add(&batch[i])
			st.th.add(&batch[i])
		}
	}
}

// made is called after each record is made, with all records so far and
// the kernel's clock. A world without a stream (a model test's) keeps its
// records only.
func (st *recordStream) made(records []history.Record, now time.Duration) {
	if st != nil && len(records)-st.scanned >= streamBatch {
		st.flush(records, now)
	}
}

// flush hands over the records before the clock at, in time order.
func (st *recordStream) flush(records []history.Record, at time.Duration) {
	keys := append(st.keys[:0], st.held...)
	for i := st.scanned; i < len(records); i++ {
		keys = append(keys, recordKey{records[i].T, int32(i)})
	}
	st.scanned = len(records)
	sortKeys(keys) // held keys first: ties keep the order records were made
	n := 0
	for n < len(keys) && keys[n].t < at {
		n++
	}
	from := len(st.out)
	for _, k := range keys[:n] {
		st.out = append(st.out, records[k.i])
	}
	st.held = append(st.held[:0], keys[n:]...)
	st.keys = keys
	if len(st.out) > from {
		st.ch <- st.out[from:len(st.out):len(st.out)]
	}
}

// finish hands over the rest and waits for the check: the outcome, the
// trace hash, and all records in time order.
func (st *recordStream) finish(records []history.Record) (*invariant.Outcome, []byte, []history.Record) {
	st.flush(records, math.MaxInt64)
	st.stop()
	if st.panicked != nil {
		panic(st.panicked)
	}
	return st.chk.Finish(), st.th.sum(), st.out
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

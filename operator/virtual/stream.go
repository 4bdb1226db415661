package virtual

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"os"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// recordStream checks the invariants (invariant.Checker), hashes the trace,
// counts the records and writes history.jsonl on a second goroutine while
// the run goes on, so that on a machine with a second core a run ends about
// when its last event does, and so that a run keeps in memory only the
// records not yet final: its memory does not grow with simulated time (the
// checker keeps what it needs, a few numbers per latency sample).
//
// A record is never made with a time before the kernel's clock (world.record
// enforces it), so once the clock is at t, every record already made with
// a time before t is final: no later record sorts before it. Every
// streamBatch records the run hands the chunk of records made since the
// last one, and its clock, to the checking goroutine, which sorts them,
// with those it held back before, by (time, order made), takes those
// before the clock and holds back (copies) the rest. What it takes, in
// order, is exactly the stable sort of all records by time. It then gives
// the chunk's array back for the run to fill again.
type recordStream struct {
	ch   chan streamChunk
	done chan struct{}
	// cur is the chunk the run is filling (the run's side).
	cur    []history.Record
	closed bool

	// The checking goroutine's side. keep says the sorted records are
	// kept in out (a run that returns Records); sink, when set, receives
	// them as JSON lines (history.jsonl). held are records of earlier
	// chunks not yet final, sorted; spare is held's other buffer.
	keep        bool
	out         []history.Record
	sink        *historySink
	held, spare []history.Record
	keys        []recordKey
	chk         *invariant.Checker
	th          *traceHasher
	counts      report.Counter
	// panicked is what the checking goroutine panicked with (re-raised in
	// the run's goroutine by finish).
	panicked any
}

// streamChunk is a chunk of records made in a row and the run's clock:
// those before at are final.
type streamChunk struct {
	records []history.Record
	at      time.Duration
}

// streamBatch is how many new records make a chunk.
const streamBatch = 512

// streamDepth is how many chunks may wait for the checking goroutine: the
// run blocks beyond it, which bounds the records in memory.
const streamDepth = 64

// newRecordStream starts the checking goroutine. out is where it keeps
// the sorted records when keep is set (reused from an earlier run); sink,
// when not nil, receives every record in order.
func newRecordStream(out []history.Record, inv scenarios.Invariants, keep bool, sink *historySink) *recordStream {
	st := &recordStream{keep: keep, out: out[:0], sink: sink,
		ch: make(chan streamChunk, streamDepth), done: make(chan struct{})}
	st.cur = getChunk()
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
		putChunk(c.records)
	}
}

// freeChunks holds chunk arrays for the runs of the process to reuse (a
// sweep runs many; a run needs a few at once), so that a run does not
// allocate its chunks anew.
var freeChunks = make(chan []history.Record, 256)

func getChunk() []history.Record {
	select {
	case b := <-freeChunks:
		return b
	default:
		return make([]history.Record, 0, streamBatch)
	}
}

// putChunk gives a chunk back, cleared so that it keeps no run's strings
// alive.
func putChunk(b []history.Record) {
	if cap(b) != streamBatch {
		return
	}
	clear(b)
	select {
	case freeChunks <- b[:0]:
	default:
	}
}

// take sorts the chunk's records with the held ones and checks, hashes,
// counts, writes (and keeps) those before the chunk's clock. Key i < h
// is held[i], else the chunk's record i-h: held records were made before
// the chunk's, so comparing i breaks ties by the order records were made.
func (st *recordStream) take(c streamChunk) {
	h := len(st.held)
	keys := st.keys[:0]
	for i := range st.held {
		keys = append(keys, recordKey{st.held[i].T, int32(i)})
	}
	for i := range c.records {
		keys = append(keys, recordKey{c.records[i].T, int32(h + i)})
	}
	sortKeys(keys) // held keys first, and sorted: ties keep the order records were made
	n := 0
	for n < len(keys) && keys[n].t < c.at {
		n++
	}
	rec := func(i int32) *history.Record {
		if int(i) < h {
			return &st.held[i]
		}
		return &c.records[int(i)-h]
	}
	for _, k := range keys[:n] {
		r := rec(k.i)
		if st.keep {
			st.out = append(st.out, *r)
			r = &st.out[len(st.out)-1]
		}
		st.chk.Add(r)
		st.th.add(r)
		st.counts.Add(r)
		if st.sink != nil {
			st.sink.add(r)
		}
	}
	next := st.spare[:0]
	for _, k := range keys[n:] {
		next = append(next, *rec(k.i))
	}
	clear(st.held)
	st.held, st.spare = next, st.held[:0]
	st.keys = keys
	if st.sink != nil {
		st.sink.flush() // a killed run leaves the history up to here
	}
}

// add is called with each record as it is made and the kernel's clock.
func (st *recordStream) add(r history.Record, now time.Duration) {
	st.cur = append(st.cur, r)
	if len(st.cur) >= streamBatch {
		st.ch <- streamChunk{st.cur, now}
		st.cur = getChunk()
	}
}

// finish hands over the rest and waits for the check: the outcome, the
// trace hash, the counts of record kinds, all records in time order (when
// kept) and the error of writing the history, if any.
func (st *recordStream) finish() (*invariant.Outcome, []byte, report.Counter, []history.Record, error) {
	if !st.closed {
		st.ch <- streamChunk{st.cur, math.MaxInt64}
		st.cur = nil
	}
	st.stop()
	if st.panicked != nil {
		panic(st.panicked)
	}
	var err error
	if st.sink != nil {
		err = st.sink.close()
	}
	return st.chk.Finish(), st.th.sum(), st.counts, st.out, err
}

// stop ends the checking goroutine and waits for it (also when the run
// ends early).
func (st *recordStream) stop() {
	if !st.closed {
		st.closed = true
		close(st.ch)
	}
	<-st.done
	if st.sink != nil {
		st.sink.close()
	}
}

// historySink writes records to history.jsonl as JSON lines, in the order
// given; the first error sticks. It hashes what reaches the file and keeps
// the few fault and metrics records, so that finishing the run's bundle
// need not read the history again (HistoryFile).
type historySink struct {
	f      *os.File
	hf     *hashingFile
	bw     *bufio.Writer
	enc    *json.Encoder
	kept   []history.Record
	err    error
	closed bool
}

// hashingFile writes to the file and hashes and counts what was written.
type hashingFile struct {
	f *os.File
	h hash.Hash
	n int64
}

func (w *hashingFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

func createHistory(path string) (*historySink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	hf := &hashingFile{f: f, h: sha256.New()}
	bw := bufio.NewWriterSize(hf, 64<<10)
	return &historySink{f: f, hf: hf, bw: bw, enc: json.NewEncoder(bw)}, nil
}

func (s *historySink) add(r *history.Record) {
	if s.err != nil {
		return
	}
	s.err = s.enc.Encode(r)
	if bundle.FaultOrMetrics(r.Kind) && s.err == nil {
		// A copy of its own: the chunk the record is in is reused.
		var c history.Record
		b, err := json.Marshal(r)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		s.err = err
		s.kept = append(s.kept, c)
	}
}

func (s *historySink) flush() {
	if s.err == nil {
		s.err = s.bw.Flush()
	}
}

func (s *historySink) close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	s.flush()
	s.err = errors.Join(s.err, s.f.Close())
	if s.err != nil {
		s.err = fmt.Errorf("writing history: %w", s.err)
	}
	return s.err
}

// file describes the history written, once closed without an error.
func (s *historySink) file() *bundle.KnownHistory {
	if !s.closed || s.err != nil {
		return nil
	}
	return &bundle.KnownHistory{Size: s.hf.n, SHA256: hex.EncodeToString(s.hf.h.Sum(nil)), FaultsAndMetrics: s.kept}
}

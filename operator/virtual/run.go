package virtual

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/backend"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/kubelet"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/subject"
	"github.com/driftlab/driftlab/sim/workload"
)

// Backend is the name of this backend in summaries.
const Backend = backend.Virtual

// Defaults of Options.
const (
	DefaultCommitLatency = time.Millisecond
	DefaultDeliveryMin   = time.Millisecond
	DefaultDeliveryMax   = 3 * time.Millisecond
	DefaultReconcileTime = time.Millisecond
	DefaultSettle        = time.Second
	DefaultMaxEvents     = 20_000_000
)

// Options configure a virtual run. The zero value of each field means its
// default; a negative duration means zero.
type Options struct {
	// CommitLatency is the time from a write's issue to its commit in the
	// modelled etcd (where a WAL fsync delay will act). Default 1ms.
	CommitLatency time.Duration
	// DeliveryMin and DeliveryMax bound the uniformly drawn delay from a
	// commit to its delivery to each watcher (the operator's informers and
	// the kubelet). Defaults 1ms and 3ms.
	DeliveryMin, DeliveryMax time.Duration
	// ReconcileTime is the modelled compute time of one reconcile, charged
	// before its first request. Default 1ms.
	ReconcileTime time.Duration
	// Workers is how many clusters the operator reconciles at once
	// (MaxConcurrentReconciles). Default operator.DefaultWorkers, what the
	// local backend's operator process runs with.
	Workers int
	// Settle is how long the run continues after convergence (or after the
	// convergence deadline), to catch a status that drifts again. Default 1s.
	Settle time.Duration
	// MaxEvents bounds the kernel events of one run; a run that needs more
	// ends with an error. Default 20,000,000.
	MaxEvents int
	// Dir, when set, receives history.jsonl, summary.json and latency.hlog.
	// The history is written as the run goes (a run killed with SIGKILL
	// leaves the records up to a moment before), and the run does not keep
	// it in memory: Result.Records is nil.
	Dir string
	// Context, when set and cancelled (Ctrl-C), ends the run within a few
	// thousand events: the records so far are checked and written, and Run
	// returns its Result with an error wrapping ErrInterrupted.
	Context context.Context
	// Verdict, when set, returns no Records and no Outcome.Histogram: the
	// sorted history stays in the buffer the next run in the process
	// reuses instead of being copied out, and the histogram goes back to
	// the invariant package for the next run's check. The rest of Outcome,
	// Summary and TraceHash are those of a full run.
	// For many runs (sweep, shrink, matrix), which replay a seed to keep
	// its history; ignored when Dir is set.
	Verdict bool
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0
		}
	}
	def(&o.CommitLatency, DefaultCommitLatency)
	def(&o.DeliveryMin, DefaultDeliveryMin)
	def(&o.DeliveryMax, DefaultDeliveryMax)
	def(&o.ReconcileTime, DefaultReconcileTime)
	def(&o.Settle, DefaultSettle)
	o.DeliveryMax = max(o.DeliveryMax, o.DeliveryMin)
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Workers <= 0 {
		o.Workers = operator.DefaultWorkers
	}
	return o
}

// Result is the outcome of one virtual run.
type Result struct {
	// Records is the history, ordered by T (stable: records of one instant
	// keep the order in which they happened), as in history.jsonl; nil
	// with Options.Verdict or Options.Dir (it is then in history.jsonl).
	Records []history.Record
	// Outcome is invariant.Check of Records.
	Outcome *invariant.Outcome
	// Summary is the run's summary.json, with Backend "virtual".
	Summary *report.Summary
	// TraceHash is the hex SHA-256 of Records serialised deterministically:
	// two runs of one scenario and seed have the same hash, or the backend
	// is not deterministic.
	TraceHash string
	// Events is the number of kernel events the run took.
	Events int
	// SimTime is the virtual time at the end of the run.
	SimTime time.Duration
	// Reconciles is the number of Reconcile calls.
	Reconciles int
	// History describes the history.jsonl written with Options.Dir (its
	// size, checksum, fault and metrics records), for the bundle's Finish
	// (bundle.Writer.UseHistory); nil without Dir or when writing failed.
	History *bundle.KnownHistory
}

// ManyRunsGCPercent is the GC target (GOGC) that driftlab's sweep and
// shrink commands set for their process, unless GOGC is in the
// environment. A virtual run allocates about 1.5 MB with a live heap of a
// few MB. At Go's default (100) the collector ran about once per run and
// its write barriers and assists slowed the kernel (1.18x the simulated
// seconds per wall second at 400). From 400 to 1600, BenchmarkBaseline's
// verdict case measured 7,462 -> 8,006 simulated seconds per CPU second
// (medians of six interleaved rounds), and a 1000-seed baseline sweep
// 3.13 -> 2.96 s of user CPU (medians of four), for a peak RSS of about
// 200 MB instead of 97 MB with two workers. The library never changes the
// GC target itself: the process that runs it decides.
const ManyRunsGCPercent = 1600

// ErrInterrupted is wrapped by the error of a run that Options.Context
// ended early (backend.ErrInterrupted, which the seed tools test for).
var ErrInterrupted = backend.ErrInterrupted

// interruptEvery is how many kernel events run between two looks at
// Options.Context (about 50 ms of a baseline run on one core).
const interruptEvery = 1 << 14

// Run executes a scenario on the virtual backend and checks its invariants.
// Everything is decided by the scenario and its seed: a run is replayed
// exactly by running it again. The error is for runs that could not be
// carried out (invalid configuration, event budget exhausted), not for
// failed invariants.
func Run(s *scenarios.Scenario, o Options) (*Result, error) {
	began := time.Now() // wall time, for the summary only; never on the simulated path
	o = o.withDefaults()
	if s.Subject != nil {
		return nil, fmt.Errorf("virtual: scenario %s tests %s: the virtual backend runs the reference operator only so far (run it on the local or cluster backend)", s.Name, s.Subject.Kind)
	}
	if s.World != nil {
		return nil, fmt.Errorf("virtual: scenario %s asks for a world (controller-manager, scheduler, Nodes), which the virtual backend does not model (run it on the local backend)", s.Name)
	}
	hc, err := healthCheckOf(s)
	if err != nil {
		return nil, err
	}
	cache, err := statecache.New(s.Operator.Cache)
	if err != nil {
		return nil, fmt.Errorf("virtual: %w", err)
	}
	bs, err := bugs.Parse(s.Operator.Bugs)
	if err != nil {
		return nil, fmt.Errorf("virtual: %w", err)
	}

	subj, err := referenceSubject()
	if err != nil {
		return nil, err
	}
	k := newKernel(s.Seed)
	w := &world{s: s, opts: o, k: k, truth: invariant.NewTruth(), subject: subj.Info(operator.Name), hc: hc}
	ops := workload.NewOps(s.Workload, s.Seed, s.NamePrefix()) // one at a time: memory flat in simulated time
	var sink *historySink
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
		if sink, err = createHistory(filepath.Join(o.Dir, "history.jsonl")); err != nil {
			return nil, err
		}
	}
	keep := !o.Verdict && o.Dir == ""
	var buf *runBuffer
	if keep {
		buf = getRunBuffer()
	} else {
		buf = &runBuffer{}
	}
	w.stream = newRecordStream(buf.sorted, s.Invariants, keep, sink)
	defer w.stream.stop() // also when the run ends early
	latency := o.CommitLatency
	w.store = newStore(k, func(objKey) time.Duration { return latency })
	if len(s.Faults) > 0 {
		w.faults = newFaultModel(w)
		w.store.f = w.faults
		if w.faults.relists() {
			w.store.committed = map[objKey]client.Object{}
		}
		if w.faults.rewatches() {
			w.store.log = []logEntry{}
		}
	}

	// Commit subscribers, in this order at every commit: truth first (it
	// also checks convergence), then the watches.
	tr := &truthRecorder{w: w, tracker: subject.NewTracker(subj)}
	w.store.subs = append(w.store.subs, tr.onCommit)
	kl := &kubeletModel{w: w, sampler: kubelet.Sampler{Dist: s.Kubelet.ReadyDelay, Seed: s.Seed},
		delay: w.deliveryDelay("watch/kubelet/pods"), known: map[string]bool{}, seen: map[string]int{}, pending: map[types.UID]bool{}}
	w.store.subs = append(w.store.subs, kl.onCommit)
	newRec := func() *controller.Reconciler {
		c := cache
		if c == nil { // a restarted process starts with an empty cache
			c, _ = statecache.New(s.Operator.Cache)
		}
		cache = nil
		return &controller.Reconciler{Cache: c, Bugs: bs, FieldOwner: controller.DefaultFieldOwner}
	}
	w.op = newOperator(w, newRec)
	wl := &workloadModel{w: w, ops: ops, actor: actor{name: "workload"}}
	wl.client = &vclient{w: w, actor: &wl.actor}
	wl.start()
	if w.faults != nil {
		w.faults.schedule()
	}

	var interrupted error
	if o.Context == nil {
		if k.run(o.MaxEvents) {
			return nil, exhausted(s, o, k)
		}
	} else {
		for k.run(min(k.ran+interruptEvery, o.MaxEvents)) {
			if k.ran >= o.MaxEvents {
				return nil, exhausted(s, o, k)
			}
			if o.Context.Err() != nil {
				interrupted = fmt.Errorf("virtual: %w at %v simulated (%d events): %w", ErrInterrupted, k.now, k.ran, context.Cause(o.Context))
				break
			}
		}
	}
	if w.phase != phaseDone && interrupted == nil {
		harnessBug("the agenda ran dry at %v before the run ended (phase %d)", k.now, w.phase)
	}

	res := &Result{Events: k.ran, SimTime: k.now, Reconciles: w.reconciles}
	outcome, hash, counts, recs, herr := w.stream.finish()
	res.Outcome, res.TraceHash = outcome, hex.EncodeToString(hash)
	if sink != nil {
		res.History = sink.file()
	}
	if keep {
		buf.sorted = recs
		res.Records = slices.Clone(recs)
		putRunBuffer(buf)
	}
	sum := &report.Summary{Scenario: s.Name, File: s.File, Backend: Backend, Seed: s.Seed, Dir: o.Dir, TraceHash: res.TraceHash,
		Operator: operator.Name, Subject: w.subject.Kind,
		Faults: faultResults(w.faults, res.Outcome), Counts: counts}
	sum.SetOutcome(res.Outcome)
	w.faults.planes(sum)
	sum.Invariants = append(append([]invariant.Result(nil), res.Outcome.Results...), report.FaultsCheck(sum.Faults))
	sum.Passed = true
	for _, r := range sum.Invariants {
		sum.Passed = sum.Passed && r.Passed
	}
	if interrupted != nil {
		sum.Passed = false
		sum.Error = interrupted.Error()
	}
	sum.DurationMs = report.Ms(time.Since(began))
	res.Summary = sum
	if o.Verdict && o.Dir == "" {
		res.Outcome.RecycleHistogram()
	}
	if herr != nil {
		return res, herr
	}
	if o.Dir != "" {
		if err := res.write(o.Dir); err != nil {
			return res, err
		}
	}
	return res, interrupted
}

func exhausted(s *scenarios.Scenario, o Options, k *kernel) error {
	return fmt.Errorf("virtual: %s seed %d: event budget of %d exhausted at %v (a reconcile loop that never settles?)",
		s.Name, s.Seed, o.MaxEvents, k.now)
}

var (
	refOnce    sync.Once
	refSubject *subject.Subject
	refErr     error
)

// referenceSubject is the reference operator's subject, compiled once per
// process: every run reads it, none changes it.
func referenceSubject() (*subject.Subject, error) {
	refOnce.Do(func() { refSubject, refErr = subject.Compile(operator.Subject()) })
	return refSubject, refErr
}

// faultResults is the summary's fault list: each fault's measured effect
// and the latency of the samples inside its window.
func faultResults(fm *faultModel, out *invariant.Outcome) []report.FaultResult {
	if fm == nil {
		return []report.FaultResult{}
	}
	return fm.results(func(i int) *report.FaultResult {
		r := &report.FaultResult{}
		for _, wl := range out.Windows {
			if wl.Index == i {
				wl := wl
				r.Window = &wl
			}
		}
		return r
	})
}

// runBuffer is where a run that returns its Records gathers them in time
// order (recordStream.out). When the run ends they are copied to a slice
// of their exact size, and the buffer goes back to runBuffers for the next
// run in the process: a run allocates its history once, at the size it
// turned out to be, rather than growing it (or guessing its size too
// large).
type runBuffer struct {
	sorted []history.Record
}

// recordKey is a record's time and its place in the order records were
// made: the sort key of recordStream.flush.
type recordKey struct {
	t time.Duration
	i int32
}

// runBuffers keeps at most one buffer per P, and none above
// maxKeptRecords, so it pins a few MB at most. A sync.Pool would not do:
// it drops its contents at almost every GC cycle, and a run allocates
// enough to start one.
var runBuffers struct {
	sync.Mutex
	free []*runBuffer
}

// maxKeptRecords is the largest buffer runBuffers keeps (15 MB).
const maxKeptRecords = 1 << 16

func getRunBuffer() *runBuffer {
	runBuffers.Lock()
	defer runBuffers.Unlock()
	if n := len(runBuffers.free); n > 0 {
		b := runBuffers.free[n-1]
		runBuffers.free = runBuffers.free[:n-1]
		return b
	}
	return &runBuffer{sorted: make([]history.Record, 0, 4096)}
}

// putRunBuffer returns a buffer, cleared so that it keeps no run's
// strings alive.
func putRunBuffer(b *runBuffer) {
	if cap(b.sorted) > maxKeptRecords {
		return
	}
	clear(b.sorted)
	b.sorted = b.sorted[:0]
	runBuffers.Lock()
	defer runBuffers.Unlock()
	if len(runBuffers.free) < runtime.GOMAXPROCS(0) {
		runBuffers.free = append(runBuffers.free, b)
	}
}

// sortKeys orders keys by (t, i). Records are out of order only by the
// few that run ahead of the clock, and by little, so an insertion sort
// takes about one pass; past 16 moves per key on average it hands over to
// a general sort.
func sortKeys(keys []recordKey) {
	moves, limit := 0, 16*len(keys)
	for i := 1; i < len(keys); i++ {
		k, j := keys[i], i
		for ; j > 0 && keys[j-1].t > k.t; j-- {
			keys[j] = keys[j-1]
		}
		keys[j] = k
		if moves += i - j; moves > limit {
			slices.SortFunc(keys, func(a, b recordKey) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.i, b.i)) })
			return
		}
	}
}

// write stores the rest of the run bundle in dir (the stream wrote
// history.jsonl): summary.json, latency.hlog and trace.sha256.
func (r *Result) write(dir string) error {
	if err := r.Summary.WriteJSON(filepath.Join(dir, "summary.json")); err != nil {
		return err
	}
	if err := report.WriteHlog(filepath.Join(dir, "latency.hlog"), r.Outcome.Histogram, Epoch, Epoch.Add(r.SimTime)); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "trace.sha256"), []byte(r.TraceHash+"\n"), 0o644)
}

// RunSafe is Run for callers that run many scenarios in one process (sweep,
// shrink, matrix): a panic of the harness itself (HarnessBugPrefix, for
// example a client call the model does not support) becomes that run's
// error instead of ending the process, so the caller can report it with its
// seed and go on.
func RunSafe(s *scenarios.Scenario, o Options) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%v", p)
		}
	}()
	return Run(s, o)
}

// Verdict is the backend.Func of this backend for the seed tools (sweep,
// shrink): RunSafe with only the verdict kept, stopped by ctx.
func Verdict(ctx context.Context, s *scenarios.Scenario) (*backend.Verdict, error) {
	res, err := RunSafe(s, Options{Verdict: true, Context: ctx})
	if res == nil {
		return nil, err
	}
	return &backend.Verdict{Summary: res.Summary, SimTime: res.SimTime, TraceHash: res.TraceHash}, err
}

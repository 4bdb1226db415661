package virtual

import (
	"context"
	"crypto/sha256"
	"hash"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/kubelet"
	"github.com/driftlab/driftlab/sim/subject"
	"github.com/driftlab/driftlab/sim/workload"
)

// phase is where the harness is in a run.
type phase uint8

const (
	phaseWorkload phase = iota // applying operations
	phaseConverge              // waiting for status to match the truth
	phaseSettle                // watching for a status that drifts again
	phaseCatchUp               // settle over, waiting for the status to catch up with a late change
	phaseDone
)

// world is one virtual run: kernel, store, operator, kubelet, workload and
// the harness that records the history.
type world struct {
	s     *scenarios.Scenario
	opts  Options
	k     *kernel
	store *store

	// records are the records of a world without a stream.
	records []history.Record
	// stream checks, hashes and writes the records as they become final.
	stream  *recordStream
	truth   *invariant.Truth
	subject *history.SubjectInfo
	phase   phase
	stopped bool

	op     *operatorModel
	faults *faultModel // nil: the scenario has no faults
	// hc is the operator's HTTP/2 health check (operator.env).
	hc healthCheck

	reconciles int
}

func (w *world) record(r history.Record) {
	if r.T < w.k.now {
		harnessBug("a %s %s record at %v, before the clock (%v)", r.Source, r.Kind, r.T, w.k.now)
	}
	if r.Source == history.SourceTruth || r.Kind == history.KindSubject {
		w.truth.Apply(r)
	} else if (r.Kind == history.KindWatchEnd || r.Kind == history.KindRelist) && w.faults != nil {
		w.faults.countWatch(&r)
	}
	if w.stream == nil { // a model test's world
		w.records = append(w.records, r)
		return
	}
	w.stream.add(r, w.k.now)
}

// deliveryDelay returns a seeded draw of watch delivery delays.
func (w *world) deliveryDelay(stream string) func() time.Duration {
	lo, hi := w.opts.DeliveryMin, w.opts.DeliveryMax
	r := w.k.stream(stream)
	return func() time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	}
}

// ---- truth ---------------------------------------------------------------

// truthRecorder turns commits into truth records at commit time, with
// the tracker every backend uses (sim/subject).
type truthRecorder struct {
	w       *world
	tracker *subject.Tracker
	buf     []history.Record
}

// Indexes of the model's kinds in the reference subject's Watched list.
const (
	watchedClusters = 0
	watchedPods     = 1
)

func (t *truthRecorder) onCommit(c *commit) {
	var obj any
	if !c.deleted {
		obj = c.obj
	}
	w := watchedClusters
	if c.key.kind == kindPod {
		w = watchedPods
	}
	t.buf = t.tracker.Commit(t.buf[:0], w, c.nn, obj, c.rev)
	for i := range t.buf {
		r := t.buf[i]
		r.T = t.w.k.now
		t.w.record(r)
	}
	t.w.checkConverged()
}

// ---- kubelet -------------------------------------------------------------

// kubeletModel is the simulated kubelet of sim/kubelet on the virtual
// clock: it watches member Pods (with its own delivery delay) and marks each
// new one Ready after kubelet.Sampler's delay for that Pod and incarnation.
type kubeletModel struct {
	w       *world
	sampler kubelet.Sampler
	delay   func() time.Duration
	last    time.Duration
	known   map[string]bool
	seen    map[string]int
	pending map[types.UID]bool
	// deliverFn is deliver, made once.
	deliverFn func(*commit)
}

func (kl *kubeletModel) onCommit(c *commit) {
	if c.key.kind != kindPod || !(isMember(c.prev) || isMember(c.obj)) {
		return
	}
	at := max(c.apiAt+kl.delay(), kl.last)
	kl.last = at
	if kl.deliverFn == nil {
		kl.deliverFn = kl.deliver
	}
	kl.w.k.atCommit(at, kl.deliverFn, c)
}

func isMember(o interface{ GetLabels() map[string]string }) bool {
	if o == nil {
		return false
	}
	_, ok := o.GetLabels()[kvv1.LabelCluster]
	return ok
}

func (kl *kubeletModel) deliver(c *commit) {
	nn := c.nn
	p := c.obj.(*corev1.Pod)
	if c.deleted {
		delete(kl.known, nn)
		delete(kl.pending, p.UID)
		return
	}
	if kl.known[nn] {
		return // the kubelet reacts to additions only
	}
	kl.known[nn] = true
	if p.DeletionTimestamp != nil || controller.PodReady(p) || kl.pending[p.UID] {
		return
	}
	n := kl.seen[nn]
	kl.seen[nn] = n + 1
	uid, key := p.UID, c.key
	kl.pending[uid] = true
	kl.w.k.after(kl.sampler.Delay(p.Name, n), func() {
		if !kl.pending[uid] || kl.w.stopped {
			return
		}
		delete(kl.pending, uid)
		kl.markReady(key, uid)
	})
}

func (kl *kubeletModel) markReady(key objKey, uid types.UID) {
	now := metav1.NewTime(Epoch.Add(kl.w.k.now))
	done, err := kl.w.store.updatePodStatus(kl.w.k.now, key, uid, func(p *corev1.Pod) corev1.PodStatus { return kubelet.ReadyStatus(now, p) })
	if err != nil {
		return // gone or replaced: nothing to report
	}
	kl.w.record(history.Record{T: done, Source: history.SourceKubelet, Kind: history.KindKubeletReady, Pod: kl.w.store.nameOf(key)})
}

// ---- workload and harness phases -----------------------------------------

// workloadModel applies the scenario's operations one after another, each at
// its due time or as soon as the one before it returned, through
// workload.Apply and a client that writes to the store.
type workloadModel struct {
	w      *world
	ops    *workload.Ops
	next   int // operations applied
	actor  actor
	client *vclient
	stepFn func()            // step, made once
	keys   map[string]string // cluster name -> "namespace/name"
}

// clusterKey is "namespace/name" of a cluster of the workload, made once
// per cluster.
func (wl *workloadModel) clusterKey(name string) string {
	k, ok := wl.keys[name]
	if !ok {
		if wl.keys == nil {
			wl.keys = map[string]string{}
		}
		k = wl.w.s.Workload.Namespace + "/" + name
		wl.keys[name] = k
	}
	return k
}

func (wl *workloadModel) start() {
	w := wl.w
	w.record(history.Record{T: 0, Source: history.SourceHarness, Kind: history.KindSubject, Subject: w.subject})
	w.record(history.Record{T: 0, Source: history.SourceOperator, Kind: history.KindOperatorReady, Detail: "virtual"})
	w.record(history.Record{T: 0, Source: history.SourceHarness, Kind: history.KindWorkloadStart, Detail: strconv.Itoa(wl.ops.Len()) + " operations"})
	first, ok := wl.ops.NextAt()
	if !ok {
		w.k.at(w.s.Workload.Duration.Duration, w.workloadEnded)
		return
	}
	wl.stepFn = wl.step
	w.k.at(first, wl.stepFn)
}

func (wl *workloadModel) step() {
	w := wl.w
	op, _ := wl.ops.Next()
	wl.next++
	wl.actor.clock = w.k.now
	err := applyOp(context.Background(), wl.client, w.s.Workload.Namespace, op)
	if checkShared {
		if err := wl.client.verifyShared(); err != nil {
			harnessBug("%v", err)
		}
	}
	r := history.Record{T: wl.actor.clock, Source: history.SourceWorkload, Kind: history.KindOp, Op: op.Kind,
		Object: wl.clusterKey(op.Name), Detail: op.String()}
	if !op.OtherKind() && (op.Kind == workload.OpCreate || op.Kind == workload.OpScale) {
		r.Replicas = history.Int32(op.Replicas)
	}
	if err != nil {
		r.Err = err.Error()
	}
	w.record(r)
	if w.faults != nil {
		w.faults.opDone(wl.next)
	}
	if at, ok := wl.ops.NextAt(); ok {
		w.k.at(max(at, wl.actor.clock), wl.stepFn)
		return
	}
	// The workload lasts its duration, also when its last operation comes
	// earlier: faults and samples inside it need that time.
	w.k.at(max(wl.actor.clock, w.s.Workload.Duration.Duration), w.workloadEnded)
}

func (w *world) workloadEnded() {
	w.record(history.Record{T: w.k.now, Source: history.SourceHarness, Kind: history.KindWorkloadEnd})
	if w.faults != nil {
		w.faults.workloadEnded()
	}
	w.phase = phaseConverge
	w.k.after(w.s.Invariants.Drift.ConvergeWithin.Duration, w.convergeDeadline)
	w.checkConverged()
}

// checkConverged runs after every commit once the workload is over: the
// local harness polls the same Truth every 20 ms; here it is exact.
func (w *world) checkConverged() {
	if w.phase == phaseCatchUp {
		if w.truth.AllInSync() {
			w.end()
		}
		return
	}
	if w.phase != phaseConverge {
		return
	}
	if w.truth.AllInSync() {
		w.record(history.Record{T: w.k.now, Source: history.SourceHarness, Kind: history.KindConverged})
		w.settle()
	}
}

func (w *world) convergeDeadline() {
	if w.phase != phaseConverge {
		return
	}
	_, why := w.truth.Converged()
	w.record(history.Record{T: w.k.now, Source: history.SourceHarness, Kind: history.KindConverged, Err: "not converged: " + why})
	w.settle()
}

func (w *world) settle() {
	converged := w.truth.AllInSync()
	w.phase = phaseSettle
	w.k.after(w.opts.Settle, func() {
		// A run that converged but is out of sync when the settle period
		// ends (a Pod made Ready in its last moments) waits up to
		// ConvergeWithin for the status to catch up, as the real-time
		// harnesses do (invariant.WaitConverged).
		if converged && !w.truth.AllInSync() {
			w.phase = phaseCatchUp
			w.k.after(w.s.Invariants.Drift.ConvergeWithin.Duration, w.end)
			return
		}
		w.end()
	})
}

// end stops the faults and the kernel: the run is over.
func (w *world) end() {
	if w.phase == phaseDone {
		return
	}
	if w.faults != nil {
		w.faults.stopAll()
	}
	w.record(history.Record{T: w.k.now, Source: history.SourceHarness, Kind: history.KindRunEnd})
	w.phase = phaseDone
	w.stopped = true
	w.k.stop()
}

// ---- trace hash ----------------------------------------------------------

// traceHasher serialises records into a SHA-256 deterministically: every
// field, in a fixed order, strings length-prefixed.
type traceHasher struct {
	h   hash.Hash
	buf []byte
}

// traceFlush is how many serialised bytes the hasher gathers before it
// writes them to the hash (the digest of a stream does not depend on how it
// is cut into writes).
const traceFlush = 16 << 10

func newTraceHasher() *traceHasher {
	return &traceHasher{h: sha256.New(), buf: make([]byte, 0, traceFlush+1024)}
}

// sum writes what is gathered and returns the digest.
func (t *traceHasher) sum() []byte {
	t.h.Write(t.buf)
	t.buf = t.buf[:0]
	return t.h.Sum(nil)
}

func (t *traceHasher) add(r *history.Record) {
	b := t.buf
	b = appendNum(b, int64(r.T))
	b = appendNum(b, r.Wall)
	b = appendStr(b, r.Source)
	b = appendStr(b, r.Kind)
	b = appendStr(b, r.Object)
	b = appendStr(b, r.Cluster)
	b = appendStr(b, r.Pod)
	b = appendStr(b, r.Op)
	b = appendStr(b, r.Resource)
	b = appendOpt(b, r.Replicas)
	b = appendOpt(b, r.Ready)
	b = appendNum(b, r.Generation)
	b = appendNum(b, r.ObservedGeneration)
	b = appendStr(b, r.Condition)
	b = appendNum(b, r.RV)
	b = appendStr(b, r.Err)
	b = appendStr(b, r.Detail)
	if len(r.Metrics) > 0 {
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b = appendStr(b, k)
			b = strconv.AppendFloat(b, r.Metrics[k], 'g', -1, 64)
			b = append(b, ';')
		}
	}
	for _, p := range r.Props {
		b = appendStr(b, p.Name)
		b = appendStr(b, p.Value)
	}
	if s := r.Subject; s != nil {
		b = appendStr(b, s.Kind)
		b = appendStr(b, s.Operator)
		for _, p := range s.Properties {
			b = appendStr(b, p.Name+"|"+p.Reported+"|"+p.Truth+"|"+p.Latency+"|"+p.Reflect+"|"+strconv.FormatBool(p.NoStaleness))
		}
	}
	b = append(b, '\n')
	if len(b) >= traceFlush {
		t.h.Write(b)
		b = b[:0]
	}
	t.buf = b
}

// appendNum appends v in decimal and ';'. Most numbers of a record are
// zero or small: one digit takes no conversion.
func appendNum(b []byte, v int64) []byte {
	if uint64(v) < 10 {
		return append(b, byte('0'+v), ';')
	}
	return append(strconv.AppendInt(b, v, 10), ';')
}

// appendStr appends s's length in decimal, ':' and s.
func appendStr(b []byte, s string) []byte {
	if len(s) < 10 {
		b = append(b, byte('0'+len(s)), ':')
	} else {
		b = append(strconv.AppendInt(b, int64(len(s)), 10), ':')
	}
	return append(b, s...)
}

// appendOpt appends an optional number: "-;" when it is absent.
func appendOpt(b []byte, p *int32) []byte {
	if p == nil {
		return append(b, '-', ';')
	}
	return appendNum(b, int64(*p))
}

package virtual

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
)

// informer is the modelled shared informer of one kind: it receives the
// store's commits over a watch whose every event is delayed by a seeded
// draw (and never overtakes the one before it), keeps the objects that
// match its selector, and calls its handler after updating its cache, as
// client-go does.
type informer struct {
	k       *kernel
	kind    objKind
	objs    map[string]client.Object // "namespace/name" -> stored object (immutable)
	rv      int64                    // highest revision delivered
	seq     int64                    // commit seq of the last event applied
	filter  func(client.Object) bool // server-side selector; nil matches all
	delay   func() time.Duration
	last    time.Duration                          // delivery time of the last event, before via
	lastVia time.Duration                          // delivery time of the last event, after via
	handler func(op, nn string, obj client.Object) // nn: obj's "namespace/name"
	// via, when set, maps a delivery time through the operator↔apiserver
	// link and the operator's pauses (faults).
	via func(time.Duration) time.Duration

	// dead: this informer's process crashed or its watch was replaced;
	// deliveries still scheduled for it are dropped.
	dead bool
	// blind: its watch ended and its reflector has not listed again yet
	// (it is sent nothing).
	blind bool
	// events counts the events its current watch delivered.
	events int
	// listSeq is the commit seq of the last relist: events committed
	// before it are already in the cache.
	listSeq int64
	// withheld, when set, counts events withheld from the cache and the
	// handler (withhold-events); the relist at the end delivers them
	// coalesced.
	withheld *vfault
	// hist, when not nil, keeps every version the cache held, for reads
	// of an older view (stale-read).
	hist map[string][]version
	// deliverFn is deliver, made once.
	deliverFn func(*commit)
	// members indexes the cached objects that carry the cluster label
	// by namespace and label value, each list ordered by name: the
	// operator's member listing (see vclient.List) reads one list
	// instead of filtering the whole cache.
	members map[memberKey][]client.Object
}

// memberKey is a namespace and a value of the cluster label.
type memberKey struct{ ns, cluster string }

// memberKeyOf returns o's memberKey; ok is false when o has no cluster
// label.
func memberKeyOf(o client.Object) (k memberKey, ok bool) {
	c, ok := o.GetLabels()[kvv1.LabelCluster]
	return memberKey{o.GetNamespace(), c}, ok
}

// index moves nn from old's list to obj's (either may be nil).
func (i *informer) index(nn string, old, obj client.Object) {
	if old != nil {
		if k, ok := memberKeyOf(old); ok {
			l := i.members[k]
			if j, found := slices.BinarySearchFunc(l, old.GetName(), byName); found {
				l = slices.Delete(l, j, j+1)
				if len(l) == 0 {
					delete(i.members, k)
				} else {
					i.members[k] = l
				}
			}
		}
	}
	if obj != nil {
		if k, ok := memberKeyOf(obj); ok {
			l := i.members[k]
			j, found := slices.BinarySearchFunc(l, obj.GetName(), byName)
			if found {
				l[j] = obj
			} else {
				i.members[k] = slices.Insert(l, j, obj)
			}
		}
	}
}

func byName(o client.Object, name string) int { return cmp.Compare(o.GetName(), name) }

// version is one state of a cached object from at on; obj nil: absent.
type version struct {
	at  time.Duration
	obj client.Object
}

func newInformer(k *kernel, kind objKind, filter func(client.Object) bool, delay func() time.Duration) *informer {
	i := &informer{k: k, kind: kind, objs: map[string]client.Object{}, filter: filter, delay: delay, members: map[memberKey][]client.Object{}}
	i.deliverFn = i.deliver
	return i
}

func (i *informer) matches(o client.Object) bool { return o != nil && (i.filter == nil || i.filter(o)) }

// onCommit is the watch: it schedules the delivery of a commit.
func (i *informer) onCommit(c *commit) {
	if c.key.kind != i.kind || i.blind || !(i.matches(c.prev) || i.matches(c.obj)) {
		return
	}
	at := max(c.apiAt+i.delay(), i.last)
	i.last = at
	if i.via != nil {
		// The link keeps the order of what it carries: at stays
		// monotonic, so deliveries keep their order.
		at = max(i.via(at), i.lastVia)
		i.lastVia = at
	}
	i.k.atCommit(at, i.deliverFn, c)
}

func (i *informer) deliver(c *commit) {
	if i.dead || c.seq <= i.listSeq {
		return
	}
	i.events++
	if f := i.withheld; f != nil {
		f.n++
		return
	}
	nn := c.nn
	_, had := i.objs[nn]
	keep := !c.deleted && i.matches(c.obj)
	i.rv, i.seq = max(i.rv, c.rev), c.seq
	switch {
	case keep && !had:
		i.set(nn, c.obj)
		i.notify("add", nn, c.obj)
	case keep:
		i.set(nn, c.obj)
		i.notify("update", nn, c.obj)
	case had:
		i.set(nn, nil)
		i.notify("delete", nn, c.obj)
	}
}

// set changes the cache (obj nil removes), keeping the history if asked.
func (i *informer) set(nn string, obj client.Object) {
	i.index(nn, i.objs[nn], obj)
	if obj == nil {
		delete(i.objs, nn)
	} else {
		i.objs[nn] = obj
	}
	if i.hist != nil {
		i.hist[nn] = append(i.hist[nn], version{at: i.k.now, obj: obj})
	}
}

// getAt returns the cached object as it was at t (nil: absent).
func (i *informer) getAt(nn string, t time.Duration) client.Object {
	vs := i.hist[nn]
	for j := len(vs) - 1; j >= 0; j-- {
		if vs[j].at <= t {
			return vs[j].obj
		}
	}
	return nil
}

// viewAt returns the cache as it was at t.
func (i *informer) viewAt(t time.Duration) map[string]client.Object {
	out := make(map[string]client.Object, len(i.objs))
	for nn := range i.hist {
		if o := i.getAt(nn, t); o != nil {
			out[nn] = o
		}
	}
	return out
}

func (i *informer) notify(op, nn string, o client.Object) {
	if i.handler != nil {
		i.handler(op, nn, o)
	}
}

// relist replaces the cache by the store's committed state, as an
// informer does after its watch expired ("410 Gone") or when it starts:
// objects new to the cache are delivered as add, changed ones as update
// (only their latest state: intermediate states are never seen), and
// cached objects that are gone as "delete-unknown" — client-go's
// DeletedFinalStateUnknown tombstone, carrying the last state the cache
// knew. Objects go in key order. It returns the events delivered and how
// many of them were delete-unknown.
func (i *informer) relist(s *store) (events, unknown int) {
	if s.committed == nil {
		harnessBug("relist without the store's committed state")
	}
	var keys []objKey
	seen := map[string]bool{}
	for key, o := range s.committed {
		if key.kind == i.kind && i.matches(o) {
			keys = append(keys, key)
			seen[key.nn()] = true
		}
	}
	for nn, o := range i.objs {
		if !seen[nn] {
			keys = append(keys, objKey{kind: i.kind, ns: o.GetNamespace(), name: o.GetName()})
		}
	}
	slices.SortFunc(keys, func(a, b objKey) int { return cmp.Or(cmp.Compare(a.ns, b.ns), cmp.Compare(a.name, b.name)) })
	i.rv, i.seq, i.listSeq = s.committedRev, s.commitSeq, s.commitSeq
	for _, key := range keys {
		nn := key.nn()
		cur, old := s.committed[key], i.objs[nn]
		if cur != nil && !i.matches(cur) {
			cur = nil
		}
		switch {
		case cur != nil && old == nil:
			i.set(nn, cur)
			i.notify("add", nn, cur)
		case cur != nil && cur.GetResourceVersion() != old.GetResourceVersion():
			i.set(nn, cur)
			i.notify("update", nn, cur)
		case cur == nil && old != nil:
			i.set(nn, nil)
			i.notify(OpDeleteUnknown, nn, old)
			unknown++
		default:
			continue
		}
		events++
	}
	return events, unknown
}

// OpDeleteUnknown is the event op of a delete that an informer discovered
// only on relist (client-go's cache.DeletedFinalStateUnknown): the object
// is the last state the cache knew.
const OpDeleteUnknown = "delete-unknown"

// workqueue is client-go's work queue as controller-runtime uses it with
// one worker: a key added while queued is queued once; a key added while
// being processed is processed again after it is done; failures back off
// exponentially per key (5 ms doubling, capped at 1000 s).
//
// Keys are the clusters' names, as controller-runtime's reconcile.Request.
type workqueue struct {
	items      []types.NamespacedName
	dirty      map[types.NamespacedName]bool
	processing map[types.NamespacedName]bool
	failures   map[types.NamespacedName]int
}

func newWorkqueue() *workqueue {
	return &workqueue{dirty: map[types.NamespacedName]bool{}, processing: map[types.NamespacedName]bool{}, failures: map[types.NamespacedName]int{}}
}

func (q *workqueue) add(key types.NamespacedName) {
	if q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return
	}
	q.items = append(q.items, key)
}

func (q *workqueue) get() types.NamespacedName {
	key := q.items[0]
	// Shift rather than reslice: the queue is short, and its array is
	// kept, so add does not allocate.
	n := copy(q.items, q.items[1:])
	q.items[n] = types.NamespacedName{}
	q.items = q.items[:n]
	q.processing[key] = true
	delete(q.dirty, key)
	return key
}

func (q *workqueue) done(key types.NamespacedName) {
	delete(q.processing, key)
	if q.dirty[key] {
		q.items = append(q.items, key)
	}
}

func (q *workqueue) backoff(key types.NamespacedName) time.Duration {
	n := q.failures[key]
	q.failures[key] = n + 1
	if n > 30 {
		return 1000 * time.Second
	}
	return min(5*time.Millisecond<<n, 1000*time.Second)
}

func (q *workqueue) forget(key types.NamespacedName) { delete(q.failures, key) }

// operatorModel runs the reference operator's real Reconcile on the model:
// informers for KVClusters and member Pods, the event handlers, a work queue
// and one worker. A reconcile runs atomically at the instant it starts,
// reading the informer caches as they are then; its compute time is charged
// before its first request and each write blocks it until the write
// commits, so the worker is busy for the reconcile's modelled duration.
//
// The operator is one process: crash-restart throws away its reconciler
// (and with it the member cache), its work queue and its informers, and
// starts new ones after the restart delay; epoch tells the timers of a
// crashed incarnation from the current one's.
type operatorModel struct {
	w      *world
	ctx    context.Context
	newRec func() *controller.Reconciler
	rec    *controller.Reconciler
	q      *workqueue
	client *vclient
	// workers run reconciles of different clusters at once, as
	// MaxConcurrentReconciles does; each has its own clock. cur is the
	// one whose reconcile is running (reconciles are atomic).
	workers  []*actor
	working  []bool
	cur      *actor
	clusters *informer
	pods     *informer
	// refl are the reflectors of clusters and pods (their backoff and
	// state outlive the informers a lost connection replaces).
	refl [2]*reflector

	busy                     int // workers busy
	wakePending, inReconcile bool
	down                     bool
	epoch                    int
	crash                    *vfault // armed crash-restart
	// startNextFn is startNext, made once.
	startNextFn func()
	// doneFree holds ends of reconciles that have run (newDone).
	doneFree []*reconcileDone
}

// crashSignal unwinds a reconcile whose process crashed.
type crashSignal struct{}

func newOperator(w *world, newRec func() *controller.Reconciler) *operatorModel {
	o := &operatorModel{w: w, ctx: context.Background(), newRec: newRec, q: newWorkqueue()}
	o.startNextFn = o.startNext
	for range max(w.opts.Workers, 1) {
		o.workers = append(o.workers, &actor{name: "operator"})
		o.working = append(o.working, false)
	}
	o.cur = o.workers[0]
	o.client = &vclient{w: w, actor: o.cur, batchDeletes: true, opLink: true, reuseItems: true}
	o.client.crash = o.crashInReconcile
	if fm := w.faults; fm != nil {
		if len(fm.gc) > 0 {
			for _, a := range o.workers {
				a.gate = fm.gcFree
			}
		}
		if len(fm.stale) > 0 {
			o.client.stale = func(*informer) (time.Duration, *vfault) {
				if f := active(fm.stale); f != nil {
					return f.spec.Lag.Duration, f
				}
				return 0, nil
			}
		}
	}
	o.start()
	if fm := w.faults; fm != nil && len(fm.links[linkOpAPI]) > 0 {
		fm.conn = newH2Conn(fm, o, w.hc)
	}
	w.store.subs = append(w.store.subs, o.onCommit)
	return o
}

// start builds a new incarnation: reconciler, informers.
func (o *operatorModel) start() {
	w := o.w
	o.rec = o.newRec()
	o.rec.Client = o.client
	o.rec.Events = operatorSink{o}
	o.clusters = newInformer(w.k, kindCluster, nil, w.deliveryDelay("watch/operator/kvclusters"))
	o.pods = newInformer(w.k, kindPod, hasClusterLabel, w.deliveryDelay("watch/operator/pods"))
	o.clusters.handler = o.onCluster
	o.pods.handler = o.onPod
	if fm := w.faults; fm != nil {
		via := func(t time.Duration) time.Duration { return fm.gcFree(fm.cross(linkOpAPI, down, laneRequest, t)) }
		o.clusters.via, o.pods.via = via, via
		if len(fm.stale) > 0 {
			o.clusters.hist, o.pods.hist = map[string][]version{}, map[string][]version{}
		}
	}
	o.client.clusters, o.client.pods = o.clusters, o.pods
	if fm := w.faults; fm != nil && len(fm.links[linkOpAPI]) > 0 {
		// Only a fault on the operator's link can close its connection;
		// the reflectors' backoff is made for such runs alone.
		o.refl = [2]*reflector{newReflector(w.k, kindCluster), newReflector(w.k, kindPod)}
	}
}

// onCommit feeds the current incarnation's informers.
func (o *operatorModel) onCommit(c *commit) {
	if o.down {
		return
	}
	o.clusters.onCommit(c)
	o.pods.onCommit(c)
}

func hasClusterLabel(o client.Object) bool {
	_, ok := o.GetLabels()[kvv1.LabelCluster]
	return ok
}

// operatorSink stamps the operator's records with the virtual clock: inside
// a reconcile, the operator's own clock (it advances with each request). A
// crashed process records nothing.
type operatorSink struct{ o *operatorModel }

var _ history.Sink = operatorSink{}

func (s operatorSink) Emit(r history.Record) {
	if s.o.down {
		return
	}
	r.Wall = 0
	r.T = s.o.w.k.now
	if s.o.inReconcile {
		if r.Kind == history.KindReconcileEnd {
			// Batched Deletes are part of the reconcile: commit them
			// before it reports its end.
			s.o.client.flush()
			if s.o.crash != nil && s.o.client.crashAt > 0 {
				// Fewer calls than the crash point: the process dies
				// after its last call, before the reconcile returns.
				s.o.crashInReconcile(s.o.client.calls + 1)
			}
		}
		r.T = s.o.cur.clock
	}
	s.o.w.record(r)
}

// onCluster runs the controller's own KVCluster event handling, then
// queues the cluster, as EnqueueRequestForObject does.
func (o *operatorModel) onCluster(op, _ string, obj client.Object) {
	o.rec.OnClusterEvent(op, obj)
	o.enqueue(types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()})
}

// onPod runs the controller's own Pod event handling (record, feed the
// member cache) and queues the Pod's cluster.
func (o *operatorModel) onPod(op, _ string, obj client.Object) {
	if nn, ok := o.rec.OnPodEvent(op, obj.(*corev1.Pod)); ok {
		o.enqueue(nn)
	}
}

func (o *operatorModel) enqueue(key types.NamespacedName) {
	o.q.add(key)
	o.wake()
}

// wake makes an idle worker pick up the next key at the current instant,
// after the events already due now.
func (o *operatorModel) wake() {
	if o.busy >= len(o.workers) || o.wakePending || len(o.q.items) == 0 || o.down {
		return
	}
	o.wakePending = true
	o.w.k.at(o.w.k.now, o.startNextFn)
}

func (o *operatorModel) startNext() {
	o.wakePending = false
	if o.busy >= len(o.workers) || len(o.q.items) == 0 || o.w.stopped || o.down {
		return
	}
	if g := o.workers[0].gate; g != nil {
		if t := g(o.w.k.now); t > o.w.k.now { // paused: run when it can
			o.wakePending = true
			o.w.k.at(t, o.startNextFn)
			return
		}
	}
	key := o.q.get()
	wi := slices.Index(o.working, false)
	o.working[wi] = true
	o.busy++
	a := o.workers[wi]
	a.clock, a.charge = o.w.k.now, o.w.opts.ReconcileTime
	o.cur, o.client.actor = a, a
	o.inReconcile = true
	if o.crash != nil {
		o.client.calls, o.client.crashAt = 0, o.crash.crashCall
	}
	res, err := o.reconcile(key)
	if checkShared {
		if err := o.client.verifyShared(); err != nil {
			harnessBug("%v", err)
		}
	}
	o.client.endReconcile()
	if o.down { // crashed in the middle of it
		o.inReconcile = false
		return
	}
	o.client.flush()
	o.inReconcile = false
	end := a.issue() // charge the compute time if no request did
	o.w.reconciles++
	d := o.newDone()
	d.wi, d.epoch, d.key, d.res, d.err = wi, o.epoch, key, res, err
	o.w.k.at(end, d.fn)
	o.wake() // another worker may take the next key now
}

// reconcileDone is the end of one reconcile, due when its worker's clock
// says: the worker is free again and the result goes to the queue, unless
// the process crashed since (another epoch). They are reused (doneFree):
// a closure per reconcile was about 690 of a baseline run's 10,250
// allocations.
type reconcileDone struct {
	o         *operatorModel
	wi, epoch int
	key       types.NamespacedName
	res       reconcile.Result
	err       error
	fn        func() // run, made once
}

func (o *operatorModel) newDone() *reconcileDone {
	if n := len(o.doneFree); n > 0 {
		d := o.doneFree[n-1]
		o.doneFree = o.doneFree[:n-1]
		return d
	}
	d := &reconcileDone{o: o}
	d.fn = d.run
	return d
}

func (d *reconcileDone) run() {
	o, wi, epoch, key, res, err := d.o, d.wi, d.epoch, d.key, d.res, d.err
	d.err = nil
	o.doneFree = append(o.doneFree, d) // each is due once: free to reuse now
	if o.epoch == epoch {
		o.working[wi] = false
		o.busy--
		o.finish(key, res, err)
	}
}

func (o *operatorModel) reconcile(key types.NamespacedName) (res reconcile.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(crashSignal); ok {
				err = errCrashed
				return
			}
			if s, ok := p.(string); ok && strings.HasPrefix(s, HarnessBugPrefix) {
				panic(p)
			}
			// controller-runtime recovers reconciler panics the same way.
			err = fmt.Errorf("panic: %v [recovered]", p)
		}
	}()
	return o.rec.Reconcile(o.ctx, reconcile.Request{NamespacedName: key})
}

var errCrashed = fmt.Errorf("the operator process crashed")

// finish is controller-runtime's handling of a reconcile's result.
func (o *operatorModel) finish(key types.NamespacedName, res reconcile.Result, err error) {
	o.q.done(key)
	switch {
	case err != nil:
		o.addAfter(key, o.q.backoff(key))
	case res.RequeueAfter > 0:
		o.q.forget(key)
		o.addAfter(key, res.RequeueAfter)
	case res.Requeue: //nolint:staticcheck // modelled as controller-runtime still honours it
		o.addAfter(key, o.q.backoff(key))
	default:
		o.q.forget(key)
	}
	o.wake()
}

func (o *operatorModel) addAfter(key types.NamespacedName, d time.Duration) {
	epoch := o.epoch
	o.w.k.after(d, func() {
		if o.epoch == epoch {
			o.enqueue(key)
		}
	})
}

// ---- faults on the operator's process ------------------------------------

// armCrash makes the next reconcile crash at the fault's seeded call.
func (o *operatorModel) armCrash(f *vfault) { o.crash = f }

// crashInReconcile is the client's crash point: the process dies while
// making its call-th call of the reconcile; the calls before it happened.
func (o *operatorModel) crashInReconcile(call int) {
	f := o.crash
	if f == nil {
		return
	}
	o.crashNow(f, call)
	panic(crashSignal{})
}

// crashNow kills the process: what it has in memory is lost (reconciler
// and member cache, work queue, informer caches) and it restarts after
// the fault's restartDelay, relisting everything. call is the reconcile
// call it died at (0: it was idle).
func (o *operatorModel) crashNow(f *vfault, call int) {
	o.client.crashAt, o.crash = 0, nil
	if o.down {
		return
	}
	o.client.flush() // Deletes already answered were sent
	at := o.w.k.now
	if o.inReconcile {
		at = o.cur.clock
	}
	f.crashed, f.n = true, call
	f.m = len(o.q.items) + o.busy
	o.down, o.busy, o.wakePending = true, 0, false
	clear(o.working)
	o.epoch++
	o.clusters.dead, o.pods.dead = true, true
	if c := o.w.faults.conn; c != nil {
		c.drop() // the process's connection dies with it
	}
	o.q = newWorkqueue()
	restart := at + f.spec.RestartDelay.Duration
	o.w.k.at(max(restart, o.w.k.now), func() { o.restart(f, at) })
}

// restart starts a new incarnation: new reconciler and member cache,
// informers that list everything (add events, as client-go's initial
// list), an empty queue.
func (o *operatorModel) restart(f *vfault, crashedAt time.Duration) {
	if o.w.stopped {
		return
	}
	o.down = false
	f.sum = o.w.k.now - crashedAt
	o.start()
	if c := o.w.faults.conn; c != nil {
		c.openAt(o.w.k.now)
	}
	o.w.record(history.Record{T: o.w.k.now, Source: history.SourceOperator, Kind: history.KindOperatorReady, Detail: "virtual: restarted after a crash"})
	a, _ := o.clusters.relist(o.w.store)
	b, _ := o.pods.relist(o.w.store)
	f.k = a + b
}

// setWithhold starts or ends withholding the events of a resource from
// the operator's informers; at the end they relist, so the operator sees
// only the latest state of each object.
func (o *operatorModel) setWithhold(f *vfault, on bool) {
	for _, inf := range o.informersFor(f.spec.Resource) {
		if on {
			inf.withheld = f
			continue
		}
		inf.withheld = nil
		if o.down || inf.dead {
			continue
		}
		n, unknown := inf.relist(o.w.store)
		f.m += n
		f.k += unknown
	}
}

func (o *operatorModel) informersFor(resource string) []*informer {
	switch resource {
	case scenarios.ResourcePods:
		return []*informer{o.pods}
	case scenarios.ResourceKVClusters:
		return []*informer{o.clusters}
	}
	return []*informer{o.clusters, o.pods}
}

// resetWatches is a reset of the operator's connection to the apiserver:
// events in flight are lost, and each informer watches again from the
// last revision it saw. The apiserver replays the events after it from
// its watch cache when they are still there (it keeps them
// watchCacheRetention), or answers "410 Gone" (the revision was
// compacted) and the informer relists.
func (o *operatorModel) resetWatches(f *vfault) {
	if o.down {
		return
	}
	for _, inf := range []*informer{o.clusters, o.pods} {
		repl := inf.replacement()
		inf.dead = true
		missed, ok := o.w.store.since(inf.seq)
		if !ok {
			n, _ := repl.relist(o.w.store)
			f.k += n
			f.relistSeen++
		} else {
			for _, c := range missed {
				c.apiAt = o.w.k.now
				repl.onCommit(&c)
			}
		}
		if inf.kind == kindPod {
			o.pods = repl
		} else {
			o.clusters = repl
		}
	}
	o.client.clusters, o.client.pods = o.clusters, o.pods
}

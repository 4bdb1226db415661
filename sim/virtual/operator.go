package virtual

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/controller"
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
	rv      string                   // revision of the last delivered event
	filter  func(client.Object) bool // server-side selector; nil matches all
	delay   func() time.Duration
	last    time.Duration // delivery time of the last event
	handler func(op string, obj client.Object)
}

func newInformer(k *kernel, kind objKind, filter func(client.Object) bool, delay func() time.Duration) *informer {
	return &informer{k: k, kind: kind, objs: map[string]client.Object{}, filter: filter, delay: delay}
}

func (i *informer) matches(o client.Object) bool { return o != nil && (i.filter == nil || i.filter(o)) }

// onCommit is the watch: it schedules the delivery of a commit.
func (i *informer) onCommit(c commit) {
	if c.key.kind != i.kind || !(i.matches(c.prev) || i.matches(c.obj)) {
		return
	}
	at := max(i.k.now+i.delay(), i.last)
	i.last = at
	i.k.at(at, func() { i.deliver(c) })
}

func (i *informer) deliver(c commit) {
	nn := c.key.nn()
	_, had := i.objs[nn]
	keep := !c.deleted && i.matches(c.obj)
	i.rv = strconv.FormatInt(c.rev, 10)
	switch {
	case keep && !had:
		i.objs[nn] = c.obj
		i.notify("add", c.obj)
	case keep:
		i.objs[nn] = c.obj
		i.notify("update", c.obj)
	case had:
		delete(i.objs, nn)
		i.notify("delete", c.obj)
	}
}

func (i *informer) notify(op string, o client.Object) {
	if i.handler != nil {
		i.handler(op, o)
	}
}

// workqueue is client-go's work queue as controller-runtime uses it with
// one worker: a key added while queued is queued once; a key added while
// being processed is processed again after it is done; failures back off
// exponentially per key (5 ms doubling, capped at 1000 s).
type workqueue struct {
	items      []string
	dirty      map[string]bool
	processing map[string]bool
	failures   map[string]int
}

func newWorkqueue() *workqueue {
	return &workqueue{dirty: map[string]bool{}, processing: map[string]bool{}, failures: map[string]int{}}
}

func (q *workqueue) add(key string) {
	if q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return
	}
	q.items = append(q.items, key)
}

func (q *workqueue) get() string {
	key := q.items[0]
	q.items[0] = ""
	q.items = q.items[1:]
	q.processing[key] = true
	delete(q.dirty, key)
	return key
}

func (q *workqueue) done(key string) {
	delete(q.processing, key)
	if q.dirty[key] {
		q.items = append(q.items, key)
	}
}

func (q *workqueue) backoff(key string) time.Duration {
	n := q.failures[key]
	q.failures[key] = n + 1
	if n > 30 {
		return 1000 * time.Second
	}
	return min(5*time.Millisecond<<n, 1000*time.Second)
}

func (q *workqueue) forget(key string) { delete(q.failures, key) }

// operatorModel runs the reference operator's real Reconcile on the model:
// informers for KVClusters and member Pods, the event handlers, a work queue
// and one worker. A reconcile runs atomically at the instant it starts,
// reading the informer caches as they are then; its compute time is charged
// before its first request and each write blocks it until the write
// commits, so the worker is busy for the reconcile's modelled duration.
type operatorModel struct {
	w        *world
	ctx      context.Context
	rec      *controller.Reconciler
	q        *workqueue
	actor    actor
	client   *vclient
	clusters *informer
	pods     *informer

	busy, wakePending, inReconcile bool
}

func newOperator(w *world, rec *controller.Reconciler) *operatorModel {
	o := &operatorModel{w: w, ctx: context.Background(), rec: rec, q: newWorkqueue(), actor: actor{name: "operator"}}
	o.clusters = newInformer(w.k, kindCluster, nil, w.deliveryDelay("watch/operator/kvclusters"))
	o.pods = newInformer(w.k, kindPod, hasClusterLabel, w.deliveryDelay("watch/operator/pods"))
	o.clusters.handler = o.onCluster
	o.pods.handler = o.onPod
	o.client = &vclient{w: w, actor: &o.actor, clusters: o.clusters, pods: o.pods, batchDeletes: true}
	rec.Client = o.client
	rec.Events = operatorSink{o}
	w.store.subs = append(w.store.subs, o.clusters.onCommit, o.pods.onCommit)
	return o
}

func hasClusterLabel(o client.Object) bool {
	_, ok := o.GetLabels()[kvv1.LabelCluster]
	return ok
}

// operatorSink stamps the operator's records with the virtual clock: inside
// a reconcile, the operator's own clock (it advances with each request).
type operatorSink struct{ o *operatorModel }

var _ history.Sink = operatorSink{}

func (s operatorSink) Emit(r history.Record) {
	r.Wall = 0
	r.T = s.o.w.k.now
	if s.o.inReconcile {
		if r.Kind == history.KindReconcileEnd {
			// Batched Deletes are part of the reconcile: commit them
			// before it reports its end.
			s.o.client.flush()
		}
		r.T = s.o.actor.clock
	}
	s.o.w.record(r)
}

// onCluster runs the controller's own KVCluster event handling, then
// queues the cluster, as EnqueueRequestForObject does.
func (o *operatorModel) onCluster(op string, obj client.Object) {
	o.rec.OnClusterEvent(op, obj)
	o.enqueue(obj.GetNamespace() + "/" + obj.GetName())
}

// onPod runs the controller's own Pod event handling (record, feed the
// member cache) and queues the Pod's cluster.
func (o *operatorModel) onPod(op string, obj client.Object) {
	if nn, ok := o.rec.OnPodEvent(op, obj.(*corev1.Pod)); ok {
		o.enqueue(nn.String())
	}
}

func (o *operatorModel) enqueue(key string) {
	o.q.add(key)
	o.wake()
}

// wake makes the idle worker pick up the next key at the current instant,
// after the events already due now.
func (o *operatorModel) wake() {
	if o.busy || o.wakePending || len(o.q.items) == 0 {
		return
	}
	o.wakePending = true
	o.w.k.at(o.w.k.now, o.startNext)
}

func (o *operatorModel) startNext() {
	o.wakePending = false
	if o.busy || len(o.q.items) == 0 || o.w.stopped {
		return
	}
	key := o.q.get()
	o.busy = true
	o.actor.clock = o.w.k.now
	o.actor.charge = o.w.opts.ReconcileTime
	o.inReconcile = true
	res, err := o.reconcile(key)
	o.client.flush()
	o.inReconcile = false
	end := o.actor.issue() // charge the compute time if no request did
	o.w.reconciles++
	o.w.k.at(end, func() { o.finish(key, res, err) })
}

func (o *operatorModel) reconcile(key string) (res reconcile.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			if s, ok := p.(string); ok && strings.HasPrefix(s, HarnessBugPrefix) {
				panic(p)
			}
			// controller-runtime recovers reconciler panics the same way.
			err = fmt.Errorf("panic: %v [recovered]", p)
		}
	}()
	ns, name, _ := strings.Cut(key, "/")
	return o.rec.Reconcile(o.ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
}

// finish is controller-runtime's handling of a reconcile's result.
func (o *operatorModel) finish(key string, res reconcile.Result, err error) {
	o.q.done(key)
	o.busy = false
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

func (o *operatorModel) addAfter(key string, d time.Duration) {
	o.w.k.after(d, func() { o.enqueue(key) })
}

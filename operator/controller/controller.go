package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/failpoints"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/sim/history"
)

// DefaultFieldOwner is the field manager of the operator's status writes.
const DefaultFieldOwner = "driftlab-operator"

// MemberImage is the image of member Pods. No kubelet pulls it: driftlab's
// simulated kubelet only flips Pod status.
const MemberImage = "registry.local/driftlab/kv-member:sim"

// StaleCopyRetry is how soon a reconcile that found its copy of the
// KVCluster older than a version the operator has already seen (its own
// last status write, or a watch event) tries again.
const StaleCopyRetry = 20 * time.Millisecond

// Reconciler reconciles KVClusters.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// Cache is the member state cache; required.
	Cache statecache.Cache
	// Bugs are the seeded bugs switched on; nil means none.
	Bugs bugs.Set
	// Events receives history records; nil discards them.
	Events history.Sink
	// FieldOwner is the field manager of status writes; default DefaultFieldOwner.
	FieldOwner string
	// MaxConcurrentReconciles is how many reconciles run at once (clusters
	// only; one cluster is never reconciled twice at once). Default 1.
	MaxConcurrentReconciles int

	wroteOnce sync.Map // cluster key -> struct{}, for bugs.FreezeStatus
	seenMu    sync.Mutex
	seen      map[string]int64 // cluster key -> newest resourceVersion seen (events, our writes)
	podGen    sync.Map         // Pod key -> generation last let through, for bugs.GenerationPredicate
	ioMu      sync.Mutex       // the one cache lock of bugs.LockAcrossIO
	listOpts  sync.Map         // cluster key -> []client.ListOption of its member listing
	keysMu    sync.Mutex
	keys      map[types.NamespacedName]string // interned "namespace/name" keys (see key)
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// SetupWithManager registers the controller with a manager.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.FieldOwner == "" {
		r.FieldOwner = DefaultFieldOwner
	}
	if r.Cache == nil {
		return fmt.Errorf("controller: Reconciler.Cache is required")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("kvcluster").
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		For(&kvv1.KVCluster{}, builder.WithPredicates(r.recordClusterEvents())).
		Watches(&corev1.Pod{}, &podHandler{r: r}).
		Complete(r)
}

func (r *Reconciler) emit(rec history.Record) {
	if r.Events != nil {
		r.Events.Emit(rec)
	}
}

// maxKeys bounds the interned keys of key: past it, the table starts
// again (a key is then made again once), so an operator that sees ever new
// objects does not grow it without end.
const maxKeys = 1 << 14

// key is "namespace/name", interned: every event and reconcile of an
// object records it, and a concatenation would allocate each time.
func (r *Reconciler) key(ns, name string) string {
	nn := types.NamespacedName{Namespace: ns, Name: name}
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	k, ok := r.keys[nn]
	if !ok {
		if r.keys == nil || len(r.keys) >= maxKeys {
			r.keys = map[types.NamespacedName]string{}
		}
		k = ns + "/" + name
		r.keys[nn] = k
	}
	return k
}

// observe stores a member's state in the cache, revision-checked unless the
// stale-overwrite bug is on.
func (r *Reconciler) observe(ck string, ord int, p *corev1.Pod) {
	if r.Bugs.On(bugs.StaleOverwrite) {
		r.Cache.Put(ck, ord, memberOf(p))
		return
	}
	r.Cache.Observe(ck, ord, memberOf(p))
}

// Reconcile implements reconcile.Reconciler. It creates and deletes member
// Pods to match spec.replicas, from the informer's listing, and writes the
// status computed from the member cache, which the Pod event handler keeps
// (OnPodEvent).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	ck := r.key(req.Namespace, req.Name)
	r.emit(history.Record{Source: history.SourceOperator, Kind: history.KindReconcileStart, Cluster: ck})
	objs := reconcilePool.Get().(*reconcileObjects)
	defer func() {
		rec := history.Record{Source: history.SourceOperator, Kind: history.KindReconcileEnd, Cluster: ck}
		if err != nil {
			rec.Err = err.Error()
		}
		r.emit(rec)
		if err != nil || res.RequeueAfter > 0 {
			failpoints.BeforeRequeue()
		}
		*objs = reconcileObjects{}
		reconcilePool.Put(objs)
	}()

	kv := &objs.kv
	if err := r.Client.Get(ctx, req.NamespacedName, kv); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.cleanUp(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if kv.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	// Is our copy older than a version already seen (a watch event, or
	// our own last status write whose event is still on the way)? Then its
	// spec and status are not what is stored, and two decisions must not be
	// taken from it: which members to create or delete, and "the status is
	// unchanged, nothing to write". The status write itself is safe: its
	// optimistic lock makes the API server refuse a stale copy. (A
	// resourceVersion is etcd's revision: it only grows.) The
	// status-update-clobber bug trusts whatever copy it has.
	stale := rvOf(kv) < r.seenRV(ck) && !r.Bugs.On(bugs.StatusUpdateClobber)

	pods := &objs.pods
	if err := r.Client.List(ctx, pods, r.memberListOptions(ck, kv.Namespace, kv.Name)...); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing members: %w", err)
	}
	var buf [16]ordPod // most clusters: no allocation
	present := membersByOrdinal(buf[:0], pods.Items)

	// The listing and the event stream are two views of the members: a
	// member the cache tracks takes the newer of the two (the revision
	// check refuses a listing older than the last event). Members enter
	// and leave the cache only through events and our own deletes.
	for _, m := range present {
		if r.tracked(ck, m.ord) {
			r.observe(ck, m.ord, m.pod)
		}
	}

	// Create missing members, delete surplus ones.
	want := int(kv.Spec.Replicas)
	if stale {
		want = -1 // decide nothing from an old spec
	}
	for ord := 0; ord < want; ord++ {
		if present.get(ord) != nil {
			continue
		}
		if err := r.createMember(ctx, kv, ord); err != nil {
			return ctrl.Result{}, err
		}
	}
	for _, m := range present { // in order: backends replay it
		ord, p := m.ord, m.pod
		if want < 0 || ord < want || p.DeletionTimestamp != nil {
			continue
		}
		if err := r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("deleting member %s: %w", p.Name, err)
		}
		// The member leaves the cache when its delete event arrives: until
		// the deletion commits it is still a member, and the truth counts it.
	}

	return r.writeStatus(ctx, kv, ck, stale)
}

// reconcileObjects are what one reconcile reads the cluster and its
// members into. Nothing keeps them once Reconcile returns (records hold
// strings, the client copies what it keeps), so they are pooled: a
// reconcile runs for every event, and most find nothing to do.
type reconcileObjects struct {
	kv   kvv1.KVCluster
	pods corev1.PodList
}

var reconcilePool = sync.Pool{New: func() any { return new(reconcileObjects) }}

// writeStatus computes status from the member cache and patches it when it
// changed. With a stale copy, an unchanged status is looked at again
// shortly rather than trusted.
func (r *Reconciler) writeStatus(ctx context.Context, kv *kvv1.KVCluster, ck string, stale bool) (ctrl.Result, error) {
	if r.Bugs.On(bugs.LockAcrossIO) {
		r.ioMu.Lock()
		defer r.ioMu.Unlock()
	}
	// readyReplicas counts every member Pod that is Ready, surplus ones
	// not yet gone included: the status says what the members are.
	ready := r.readyMembers(ck)
	cond := metav1.Condition{
		Type:               kvv1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             "MembersNotReady",
		ObservedGeneration: kv.Generation,
	}
	if ready == kv.Spec.Replicas {
		cond.Status, cond.Reason = metav1.ConditionTrue, "AllMembersReady"
	}
	// The message is "<ready>/<replicas> members ready", formatted on the
	// stack first: most reconciles find the status unchanged and need no
	// string, no copy of the cluster and no write.
	var buf [48]byte
	msg := readyMessage(buf[:0], ready, kv.Spec.Replicas)
	if statusUnchanged(&kv.Status, ready, kv.Generation, &cond, msg) {
		if stale {
			return ctrl.Result{RequeueAfter: StaleCopyRetry}, nil
		}
		return ctrl.Result{}, nil
	}
	cond.Message = string(msg)
	// The patch's base: kv as it is now, sharing everything with it. Only
	// kv's status changes below, and its conditions, the one part changed
	// in place (meta.SetStatusCondition), get a slice of their own first:
	// the base, and the object kv was read as (a cache may hand it out
	// without a deep copy), stay as they were read.
	orig := &kvv1.KVCluster{}
	*orig = *kv
	kv.Status.Conditions = slices.Clone(kv.Status.Conditions)
	kv.Status.ReadyReplicas = ready
	kv.Status.ObservedGeneration = kv.Generation
	meta.SetStatusCondition(&kv.Status.Conditions, cond)
	clobber := r.Bugs.On(bugs.StatusUpdateClobber)
	if statusEqual(orig.Status, kv.Status) {
		if stale {
			return ctrl.Result{RequeueAfter: StaleCopyRetry}, nil
		}
		return ctrl.Result{}, nil
	}
	if r.Bugs.On(bugs.FreezeStatus) {
		if _, done := r.wroteOnce.LoadOrStore(ck, struct{}{}); done {
			return ctrl.Result{}, nil
		}
	}
	failpoints.BeforeStatusWrite()
	var err error
	if clobber {
		kv.ResourceVersion = "" // unconditional: no conflict, whatever is stored
		err = r.Client.Status().Update(ctx, kv, client.FieldOwner(r.FieldOwner))
	} else {
		err = r.Client.Status().Patch(ctx, kv,
			client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(r.FieldOwner))
	}
	rec := history.Record{
		Source: history.SourceOperator, Kind: history.KindStatusWrite, Cluster: ck,
		Ready: history.Int32(ready), ObservedGeneration: kv.Generation,
		Condition: string(cond.Status),
	}
	if err != nil {
		rec.Err = err.Error()
		r.emit(rec)
		if r.Bugs.On(bugs.NoRequeueOnConflict) {
			return ctrl.Result{}, nil
		}
		// A conflict means our copy was stale: try again with a fresh one.
		return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
	}
	rec.RV = rvOf(kv)
	r.saw(ck, rec.RV)
	r.emit(rec)
	return ctrl.Result{}, nil
}

// memberListOptions are the options of a cluster's member listing (its
// namespace, its cluster label), made once per cluster: listing only reads
// them.
func (r *Reconciler) memberListOptions(ck, ns, name string) []client.ListOption {
	if o, ok := r.listOpts.Load(ck); ok {
		return o.([]client.ListOption)
	}
	o := []client.ListOption{client.InNamespace(ns), client.MatchingLabels{kvv1.LabelCluster: name}}
	r.listOpts.Store(ck, o)
	return o
}

// saw records that a version of a cluster exists.
func (r *Reconciler) saw(ck string, rv int64) {
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	if r.seen == nil {
		r.seen = map[string]int64{}
	}
	r.seen[ck] = max(r.seen[ck], rv)
}

func (r *Reconciler) seenRV(ck string) int64 {
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	return r.seen[ck]
}

func rvOf(o client.Object) int64 {
	rv, _ := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
	return rv
}

// statusUnchanged reports whether setting ReadyReplicas to ready,
// ObservedGeneration to gen and the Ready condition to cond with message
// msg (as writeStatus does with meta.SetStatusCondition) would leave st
// equal to itself by statusEqual, without changing st.
func statusUnchanged(st *kvv1.KVClusterStatus, ready int32, gen int64, cond *metav1.Condition, msg []byte) bool {
	if st.ReadyReplicas != ready || st.ObservedGeneration != gen {
		return false
	}
	c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionReady)
	return c != nil && c.Status == cond.Status && c.Reason == cond.Reason && c.Message == string(msg) && c.ObservedGeneration == cond.ObservedGeneration
}

// readyMessage appends the Ready condition's message, as
// fmt.Sprintf("%d/%d members ready", ready, replicas) writes it.
func readyMessage(b []byte, ready, replicas int32) []byte {
	b = strconv.AppendInt(b, int64(ready), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(replicas), 10)
	return append(b, " members ready"...)
}

// readyMembers counts the cluster's cached members that are Ready and not
// terminating.
func (r *Reconciler) readyMembers(ck string) int32 {
	if c, ok := r.Cache.(statecache.ReadyCounter); ok {
		return int32(c.CountReady(ck))
	}
	var ready int32
	for _, m := range r.Cache.Members(ck) {
		if m.Ready && !m.Terminating {
			ready++
		}
	}
	return ready
}

// tracked reports whether the cache holds a record of the member.
func (r *Reconciler) tracked(ck string, ord int) bool {
	if c, ok := r.Cache.(statecache.ReadyCounter); ok {
		return c.Has(ck, ord)
	}
	_, ok := r.Cache.Get(ck, ord)
	return ok
}

// ordPod is a listed member Pod and its ordinal.
type ordPod struct {
	ord int
	pod *corev1.Pod
}

// ordPods are listed member Pods by ordinal, ascending, one per ordinal.
type ordPods []ordPod

// membersByOrdinal indexes the listed Pods that carry an ordinal, in
// dst's array when it is large enough; of two with the same ordinal the
// later one in the listing wins.
func membersByOrdinal(dst ordPods, items []corev1.Pod) ordPods {
	out := dst[:0]
	for i := range items {
		if ord, ok := ordinal(&items[i]); ok {
			out = append(out, ordPod{ord, &items[i]})
		}
	}
	slices.SortStableFunc(out, func(a, b ordPod) int { return cmp.Compare(a.ord, b.ord) })
	// Keep the last of each run of equal ordinals.
	w := 0
	for i := range out {
		if i+1 < len(out) && out[i+1].ord == out[i].ord {
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// get returns the Pod with ordinal ord, or nil.
func (ps ordPods) get(ord int) *corev1.Pod {
	if i, ok := slices.BinarySearchFunc(ps, ord, func(p ordPod, ord int) int { return cmp.Compare(p.ord, ord) }); ok {
		return ps[i].pod
	}
	return nil
}

func statusEqual(a, b kvv1.KVClusterStatus) bool {
	if a.ReadyReplicas != b.ReadyReplicas || a.ObservedGeneration != b.ObservedGeneration {
		return false
	}
	ca, cb := meta.FindStatusCondition(a.Conditions, kvv1.ConditionReady), meta.FindStatusCondition(b.Conditions, kvv1.ConditionReady)
	if ca == nil || cb == nil {
		return ca == cb
	}
	return ca.Status == cb.Status && ca.Reason == cb.Reason && ca.Message == cb.Message && ca.ObservedGeneration == cb.ObservedGeneration
}

func (r *Reconciler) createMember(ctx context.Context, kv *kvv1.KVCluster, ord int) error {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: kv.Namespace,
			Name:      kv.Name + "-" + strconv.Itoa(ord),
			Labels:    map[string]string{kvv1.LabelCluster: kv.Name, kvv1.LabelOrdinal: strconv.Itoa(ord)},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "kv", Image: MemberImage}},
		},
	}
	if err := controllerutil.SetControllerReference(kv, p, r.Client.Scheme()); err != nil {
		return err
	}
	if err := r.Client.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating member %s: %w", p.Name, err)
	}
	return nil
}

// cleanUp deletes the members of a deleted cluster. envtest runs no garbage
// collector, so owner references alone would leave them behind.
func (r *Reconciler) cleanUp(ctx context.Context, nn types.NamespacedName) error {
	ck := r.key(nn.Namespace, nn.Name)
	r.Cache.Forget(ck)
	r.wroteOnce.Delete(ck)
	r.listOpts.Delete(ck)
	r.seenMu.Lock()
	delete(r.seen, ck)
	r.seenMu.Unlock()
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(nn.Namespace), client.MatchingLabels{kvv1.LabelCluster: nn.Name}); err != nil {
		return err
	}
	for i := range pods.Items {
		if err := r.Client.Delete(ctx, &pods.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting member %s of deleted cluster: %w", pods.Items[i].Name, err)
		}
	}
	return nil
}

func ordinal(p *corev1.Pod) (int, bool) {
	s, ok := p.Labels[kvv1.LabelOrdinal]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// PodReady reports whether a Pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func memberOf(p *corev1.Pod) statecache.Member {
	rv, _ := strconv.ParseUint(p.ResourceVersion, 10, 64)
	return statecache.Member{Revision: rv, Ready: PodReady(p), Terminating: p.DeletionTimestamp != nil, Pod: p.Name}
}

// OnClusterEvent is what the controller does when its informer reports a
// KVCluster event (op is add, update or delete): it records the event and
// remembers the object's resourceVersion, so that a reconcile never acts on
// an older copy (see Reconcile). The cluster itself is then queued. Backends that drive Reconcile themselves
// (the virtual backend) call it instead of wiring a manager.
func (r *Reconciler) OnClusterEvent(op string, o client.Object) {
	ck := r.key(o.GetNamespace(), o.GetName())
	if op != "delete" {
		r.saw(ck, rvOf(o))
	}
	r.emit(history.Record{Source: history.SourceOperator, Kind: history.KindEvent, Resource: "kvcluster", Op: op, Cluster: ck})
}

// OnPodEvent is what the controller does when its informer reports a member
// Pod event (op is add, update, delete, generic, or delete-unknown for a
// delete the informer only learnt about on relist, client-go's
// DeletedFinalStateUnknown): it records the event, feeds the member cache
// (removing the member on either kind of delete) and returns the cluster to
// queue; ok is false when nothing is to be queued (a Pod without the
// cluster label, or a seeded bug dropped the event).
func (r *Reconciler) OnPodEvent(op string, p *corev1.Pod) (cluster types.NamespacedName, ok bool) {
	name, ok := p.Labels[kvv1.LabelCluster]
	if !ok {
		return types.NamespacedName{}, false
	}
	pk := r.key(p.Namespace, p.Name)
	if r.Bugs.On(bugs.GenerationPredicate) {
		// The predicate runs before the handler: a filtered event is
		// neither recorded nor seen.
		if op == "delete" || op == "delete-unknown" {
			r.podGen.Delete(pk)
		} else if g, seen := r.podGen.Swap(pk, p.Generation); op == "update" && seen && g.(int64) == p.Generation {
			return types.NamespacedName{}, false
		}
	}
	failpoints.InEventHandler()
	ck := r.key(p.Namespace, name)
	r.emit(history.Record{Source: history.SourceOperator, Kind: history.KindEvent, Resource: "pod", Op: op, Cluster: ck, Pod: pk})
	if op == "delete-unknown" && r.Bugs.On(bugs.DropTombstone) {
		return types.NamespacedName{}, false // not a *corev1.Pod delete: dropped
	}
	if r.Bugs.On(bugs.LockAcrossIO) {
		r.ioMu.Lock()
		defer r.ioMu.Unlock()
	}
	if ord, ok := ordinal(p); ok {
		switch op {
		case "delete", "delete-unknown":
			r.Cache.Remove(ck, ord)
		default:
			r.observe(ck, ord, p)
		}
	}
	if op == "update" && r.Bugs.On(bugs.NoEnqueueOnPodUpdate) {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: p.Namespace, Name: name}, true
}

func (r *Reconciler) recordClusterEvents() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { r.OnClusterEvent("add", e.Object); return true },
		UpdateFunc:  func(e event.UpdateEvent) bool { r.OnClusterEvent("update", e.ObjectNew); return true },
		DeleteFunc:  func(e event.DeleteEvent) bool { r.OnClusterEvent("delete", e.Object); return true },
		GenericFunc: func(e event.GenericEvent) bool { return true },
	}
}

// podHandler feeds the member cache from Pod events and enqueues the Pod's
// cluster (found by label: envtest has no garbage collector to rely on).
type podHandler struct{ r *Reconciler }

var _ handler.EventHandler = (*podHandler)(nil)

func (h *podHandler) handle(op string, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	if nn, ok := h.r.OnPodEvent(op, p); ok {
		q.Add(reconcile.Request{NamespacedName: nn})
	}
}

func (h *podHandler) Create(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.handle("add", e.Object, q)
}

func (h *podHandler) Update(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.handle("update", e.ObjectNew, q)
}

func (h *podHandler) Delete(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if e.DeleteStateUnknown {
		h.handle("delete-unknown", e.Object, q)
		return
	}
	h.handle("delete", e.Object, q)
}

func (h *podHandler) Generic(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.handle("generic", e.Object, q)
}

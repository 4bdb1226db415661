package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

	wroteOnce sync.Map // cluster key -> struct{}, for bugs.FreezeStatus
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
		For(&kvv1.KVCluster{}, builder.WithPredicates(r.recordClusterEvents())).
		Watches(&corev1.Pod{}, &podHandler{r: r}).
		Complete(r)
}

func (r *Reconciler) emit(rec history.Record) {
	if r.Events != nil {
		r.Events.Emit(rec)
	}
}

func key(ns, name string) string { return ns + "/" + name }

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	ck := req.String()
	r.emit(history.Record{Source: history.SourceOperator, Kind: history.KindReconcileStart, Cluster: ck})
	defer func() {
		rec := history.Record{Source: history.SourceOperator, Kind: history.KindReconcileEnd, Cluster: ck}
		if err != nil {
			rec.Err = err.Error()
		}
		r.emit(rec)
		if err != nil || res.RequeueAfter > 0 {
			failpoints.BeforeRequeue()
		}
	}()

	kv := &kvv1.KVCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, kv); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.cleanUp(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if kv.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}

	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(kv.Namespace), client.MatchingLabels{kvv1.LabelCluster: kv.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing members: %w", err)
	}

	// Refresh the member cache from the informer's view: the listing is at
	// least as new as anything the event handler saw.
	present := map[int]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		ord, ok := ordinal(p)
		if !ok {
			continue
		}
		present[ord] = p
		r.Cache.Observe(ck, ord, memberOf(p))
	}
	for ord := range r.Cache.Members(ck) {
		if present[ord] == nil {
			r.Cache.Remove(ck, ord)
		}
	}

	// Create missing members, delete surplus ones.
	want := int(kv.Spec.Replicas)
	for ord := 0; ord < want; ord++ {
		if present[ord] != nil {
			continue
		}
		if err := r.createMember(ctx, kv, ord); err != nil {
			return ctrl.Result{}, err
		}
	}
	for _, ord := range slices.Sorted(maps.Keys(present)) { // in order: backends replay it
		p := present[ord]
		if ord < want || p.DeletionTimestamp != nil {
			continue
		}
		if err := r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("deleting member %s: %w", p.Name, err)
		}
		r.Cache.Remove(ck, ord)
	}

	return r.writeStatus(ctx, kv, ck)
}

// writeStatus computes status from the member cache and patches it when it
// changed.
func (r *Reconciler) writeStatus(ctx context.Context, kv *kvv1.KVCluster, ck string) (ctrl.Result, error) {
	var ready int32
	for ord, m := range r.Cache.Members(ck) {
		if ord < int(kv.Spec.Replicas) && m.Ready && !m.Terminating {
			ready++
		}
	}
	orig := kv.DeepCopy()
	kv.Status.ReadyReplicas = ready
	kv.Status.ObservedGeneration = kv.Generation
	cond := metav1.Condition{
		Type:               kvv1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             "MembersNotReady",
		Message:            fmt.Sprintf("%d/%d members ready", ready, kv.Spec.Replicas),
		ObservedGeneration: kv.Generation,
	}
	if ready == kv.Spec.Replicas {
		cond.Status, cond.Reason = metav1.ConditionTrue, "AllMembersReady"
	}
	meta.SetStatusCondition(&kv.Status.Conditions, cond)
	if statusEqual(orig.Status, kv.Status) {
		return ctrl.Result{}, nil
	}
	if r.Bugs.On(bugs.FreezeStatus) {
		if _, done := r.wroteOnce.LoadOrStore(ck, struct{}{}); done {
			return ctrl.Result{}, nil
		}
	}
	failpoints.BeforeStatusWrite()
	err := r.Client.Status().Patch(ctx, kv,
		client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(r.FieldOwner))
	rec := history.Record{
		Source: history.SourceOperator, Kind: history.KindStatusWrite, Cluster: ck,
		Ready: history.Int32(ready), ObservedGeneration: kv.Generation,
		Condition: string(cond.Status),
	}
	if err != nil {
		rec.Err = err.Error()
		r.emit(rec)
		// A conflict means our copy was stale: try again with a fresh one.
		return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
	}
	rec.RV, _ = strconv.ParseInt(kv.ResourceVersion, 10, 64)
	r.emit(rec)
	return ctrl.Result{}, nil
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
			Name:      fmt.Sprintf("%s-%d", kv.Name, ord),
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
	r.Cache.Forget(nn.String())
	r.wroteOnce.Delete(nn.String())
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
// KVCluster event (op is add, update or delete): it records the event. The
// cluster itself is then queued. Backends that drive Reconcile themselves
// (the virtual backend) call it instead of wiring a manager.
func (r *Reconciler) OnClusterEvent(op string, o client.Object) {
	r.emit(history.Record{Source: history.SourceOperator, Kind: history.KindEvent, Resource: "kvcluster", Op: op, Cluster: key(o.GetNamespace(), o.GetName())})
}

// OnPodEvent is what the controller does when its informer reports a member
// Pod event: it records the event, feeds the member cache (removing the
// member on delete) and returns the cluster to queue; ok is false for a Pod
// without the cluster label.
func (r *Reconciler) OnPodEvent(op string, p *corev1.Pod) (cluster types.NamespacedName, ok bool) {
	name, ok := p.Labels[kvv1.LabelCluster]
	if !ok {
		return types.NamespacedName{}, false
	}
	failpoints.InEventHandler()
	ck := key(p.Namespace, name)
	r.emit(history.Record{Source: history.SourceOperator, Kind: history.KindEvent, Resource: "pod", Op: op, Cluster: ck, Pod: key(p.Namespace, p.Name)})
	if ord, ok := ordinal(p); ok {
		if op == "delete" {
			r.Cache.Remove(ck, ord)
		} else {
			r.Cache.Observe(ck, ord, memberOf(p))
		}
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
	h.handle("delete", e.Object, q)
}

func (h *podHandler) Generic(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.handle("generic", e.Object, q)
}

package virtual

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// newTestWorld is a world with a store and a client that writes to it and
// reads through informers fed by the store's commits.
func newTestWorld(t *testing.T) (*world, *vclient) {
	t.Helper()
	k := newKernel(1)
	w := &world{opts: Options{}.withDefaults(), k: k}
	w.store = newStore(k, func(objKey) time.Duration { return time.Millisecond })
	clusters := newInformer(k, kindCluster, nil, func() time.Duration { return time.Millisecond })
	pods := newInformer(k, kindPod, hasClusterLabel, func() time.Duration { return time.Millisecond })
	w.store.subs = append(w.store.subs, clusters.onCommit, pods.onCommit)
	a := &actor{name: "test"}
	return w, &vclient{w: w, actor: a, clusters: clusters, pods: pods}
}

func settle(w *world) { w.k.run(0) }

func TestStoreSemantics(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	kv := &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kv-0"}, Spec: kvv1.KVClusterSpec{Replicas: 1},
		Status: kvv1.KVClusterStatus{ReadyReplicas: 9}}
	if err := c.Create(ctx, kv); err != nil {
		t.Fatal(err)
	}
	if kv.ResourceVersion != "1" || kv.Generation != 1 || kv.UID == "" || kv.Status.ReadyReplicas != 0 {
		t.Fatalf("after create: rv=%s gen=%d uid=%q status=%+v (status must be ignored on create)", kv.ResourceVersion, kv.Generation, kv.UID, kv.Status)
	}
	if err := c.Create(ctx, &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kv-0"}}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	stale := kv.DeepCopy()

	// Metadata change: new revision, same generation.
	if err := c.Patch(ctx, kv, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"a":"1"}}}`))); err != nil {
		t.Fatal(err)
	}
	if kv.ResourceVersion != "2" || kv.Generation != 1 {
		t.Fatalf("after annotate: rv=%s gen=%d, want 2 and 1", kv.ResourceVersion, kv.Generation)
	}
	// Spec change: generation bumped. Status in a main-resource patch is ignored.
	if err := c.Patch(ctx, kv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":3},"status":{"readyReplicas":7}}`))); err != nil {
		t.Fatal(err)
	}
	if kv.Generation != 2 || kv.Spec.Replicas != 3 || kv.Status.ReadyReplicas != 0 {
		t.Fatalf("after scale: gen=%d replicas=%d ready=%d, want 2, 3, 0", kv.Generation, kv.Spec.Replicas, kv.Status.ReadyReplicas)
	}
	// A patch that changes nothing writes nothing.
	rv := kv.ResourceVersion
	if err := c.Patch(ctx, kv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":3}}`))); err != nil {
		t.Fatal(err)
	}
	if kv.ResourceVersion != rv || w.store.rev != 3 {
		t.Fatalf("no-op patch wrote: rv %s -> %s, store revision %d", rv, kv.ResourceVersion, w.store.rev)
	}
	// Status patch with optimistic lock from a stale copy: Conflict.
	upd := stale.DeepCopy()
	upd.Status.ReadyReplicas = 1
	err := c.Status().Patch(ctx, upd, client.MergeFromWithOptions(stale, client.MergeFromWithOptimisticLock{}))
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale status patch: %v, want Conflict", err)
	}
	// From the current copy: accepted; spec changes through status are ignored,
	// and generation does not move.
	cur := kv.DeepCopy()
	upd = kv.DeepCopy()
	upd.Status.ReadyReplicas = 2
	upd.Spec.Replicas = 5
	if err := c.Status().Patch(ctx, upd, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{})); err != nil {
		t.Fatal(err)
	}
	if upd.Status.ReadyReplicas != 2 || upd.Spec.Replicas != 3 || upd.Generation != 2 {
		t.Fatalf("after status patch: ready=%d replicas=%d gen=%d, want 2, 3, 2", upd.Status.ReadyReplicas, upd.Spec.Replicas, upd.Generation)
	}

	// Reads come from the informer: nothing is there until delivery.
	got := &kvv1.KVCluster{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(kv), got); !apierrors.IsNotFound(err) {
		t.Fatalf("get before delivery: %v, want NotFound", err)
	}
	settle(w)
	if err := c.Get(ctx, client.ObjectKeyFromObject(kv), got); err != nil || got.ResourceVersion != upd.ResourceVersion {
		t.Fatalf("get after delivery: %v, rv %s want %s", err, got.ResourceVersion, upd.ResourceVersion)
	}

	// Delete with a wrong UID precondition: Conflict; right one: gone.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kv-0-0", Labels: map[string]string{kvv1.LabelCluster: "kv-0"}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	wrong := types.UID("nope")
	if err := c.Delete(ctx, pod, client.Preconditions{UID: &wrong}); !apierrors.IsConflict(err) {
		t.Fatalf("delete with wrong UID: %v, want Conflict", err)
	}
	if err := c.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, pod); !apierrors.IsNotFound(err) {
		t.Fatalf("second delete: %v, want NotFound", err)
	}
}

func TestClientListFiltersAndSorts(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	for _, p := range []struct{ ns, name, cluster string }{
		{"default", "b-1", "b"}, {"default", "a-1", "a"}, {"default", "a-0", "a"}, {"other", "a-0", "a"}, {"default", "x", ""},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name}}
		if p.cluster != "" {
			pod.Labels = map[string]string{kvv1.LabelCluster: p.cluster}
		}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	settle(w)
	list := &corev1.PodList{}
	if err := c.List(ctx, list, client.InNamespace("default"), client.MatchingLabels{kvv1.LabelCluster: "a"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if strings.Join(names, ",") != "default/a-0,default/a-1" {
		t.Fatalf("listed %v", names)
	}
	all := &corev1.PodList{}
	if err := c.List(ctx, all); err != nil || len(all.Items) != 4 {
		t.Fatalf("list all: %v, %d items (the informer holds only Pods with the cluster label: want 4)", err, len(all.Items))
	}
}

func TestWorkqueueDeduplicates(t *testing.T) {
	q := newWorkqueue()
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	q.add(a)
	q.add(a)
	q.add(b)
	if len(q.items) != 2 {
		t.Fatalf("queued %v, want a once and b", q.items)
	}
	k := q.get()
	q.add(k) // re-added while processing: not queued now ...
	if len(q.items) != 1 {
		t.Fatalf("queued %v while %s is processing", q.items, k)
	}
	q.add(k) // ... and still once
	q.done(k)
	if !slices.Equal(q.items, []types.NamespacedName{b, a}) {
		t.Fatalf("after done: %v, want b,a", q.items)
	}
	if q.backoff(a) != 5*time.Millisecond || q.backoff(a) != 10*time.Millisecond {
		t.Fatal("backoff does not start at 5ms and double")
	}
	q.forget(a)
	if q.backoff(a) != 5*time.Millisecond {
		t.Fatal("forget does not reset the backoff")
	}
}

func TestHarnessBugsPanicWithPrefix(t *testing.T) {
	_, c := newTestWorld(t)
	defer func() {
		p := recover()
		s, _ := p.(string)
		if !strings.HasPrefix(s, HarnessBugPrefix) {
			t.Fatalf("panic %v, want prefix %q", p, HarnessBugPrefix)
		}
	}()
	_ = c.DeleteAllOf(context.Background(), &kvv1.KVCluster{})
}

func TestKernelOrdersByTimeThenSequence(t *testing.T) {
	k := newKernel(1)
	var got []int
	k.at(2, func() { got = append(got, 3) })
	k.at(1, func() { got = append(got, 1) })
	k.at(1, func() {
		got = append(got, 2)
		k.at(1, func() { got = append(got, 22) }) // same instant, scheduled later: runs after
	})
	k.at(5, func() { got = append(got, 5); k.stop() })
	k.at(6, func() { got = append(got, 6) })
	k.run(0)
	if fmt.Sprint(got) != "[1 2 22 3 5]" {
		t.Fatalf("order %v, want [1 2 22 3 5]", got)
	}
	defer func() {
		if s, _ := recover().(string); !strings.HasPrefix(s, HarnessBugPrefix) {
			t.Fatalf("scheduling in the past did not panic with the harness prefix: %q", s)
		}
	}()
	k.at(1, func() {})
}

func createCluster(t *testing.T, w *world, c *vclient, i int) *kvv1.KVCluster {
	t.Helper()
	kv := &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("kv-%d", i)}, Spec: kvv1.KVClusterSpec{Replicas: 1}}
	if err := c.Create(context.Background(), kv); err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestUpdateAndStatusUpdate: Update and Status().Update are PUTs: a stale
// resourceVersion is a Conflict, an empty one is unconditional (as
// kube-apiserver allows for custom resources), the main resource ignores
// status and the status subresource ignores everything else, and an update
// that changes nothing writes nothing.
func TestUpdateAndStatusUpdate(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	kv := createCluster(t, w, c, 0)
	stale := kv.DeepCopy()

	kv.Spec.Replicas = 3
	kv.Labels = map[string]string{"a": "b"}
	kv.Status.ReadyReplicas = 9 // ignored by the main resource
	if err := c.Update(ctx, kv); err != nil {
		t.Fatal(err)
	}
	if kv.ResourceVersion != "2" || kv.Generation != 2 || kv.Status.ReadyReplicas != 0 || kv.Labels["a"] != "b" {
		t.Fatalf("after update: rv=%s gen=%d ready=%d labels=%v", kv.ResourceVersion, kv.Generation, kv.Status.ReadyReplicas, kv.Labels)
	}
	// A stale resourceVersion: Conflict, nothing written.
	stale.Spec.Replicas = 5
	if err := c.Update(ctx, stale); !apierrors.IsConflict(err) {
		t.Fatalf("update from a stale copy: %v, want Conflict", err)
	}
	st := stale.DeepCopy()
	st.Status.ReadyReplicas = 1
	if err := c.Status().Update(ctx, st); !apierrors.IsConflict(err) {
		t.Fatalf("status update from a stale copy: %v, want Conflict", err)
	}
	if w.store.rev != 2 {
		t.Fatalf("a conflicting update wrote: revision %d", w.store.rev)
	}
	// Empty resourceVersion: unconditional. Status().Update keeps only
	// status: the stale spec (replicas 5) is not written.
	st.ResourceVersion = ""
	if err := c.Status().Update(ctx, st); err != nil {
		t.Fatalf("unconditional status update: %v", err)
	}
	if st.Status.ReadyReplicas != 1 || st.Spec.Replicas != 3 || st.Generation != 2 || st.ResourceVersion != "3" {
		t.Fatalf("after status update: ready=%d replicas=%d gen=%d rv=%s", st.Status.ReadyReplicas, st.Spec.Replicas, st.Generation, st.ResourceVersion)
	}
	// The same object again: no write.
	if err := c.Status().Update(ctx, st); err != nil || w.store.rev != 3 {
		t.Fatalf("no-op status update: %v, revision %d", err, w.store.rev)
	}
	// Unconditional main-resource update from the stale copy wins.
	stale.ResourceVersion = ""
	if err := c.Update(ctx, stale); err != nil || stale.Spec.Replicas != 5 || stale.Status.ReadyReplicas != 1 {
		t.Fatalf("unconditional update: %v, replicas %d, ready %d", err, stale.Spec.Replicas, stale.Status.ReadyReplicas)
	}
	if err := c.Update(ctx, &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nope"}}); !apierrors.IsNotFound(err) {
		t.Fatalf("update of a missing object: %v, want NotFound", err)
	}
	settle(w)
}

// TestFastMergePatchSameAsJSON: the shortcuts for optimistic-lock merge
// patches (optimisticMergeFrom) and for the workload's patches
// (workload.Patch) give exactly the runs the JSON patch path gives, with
// and without faults.
func TestFastMergePatchSameAsJSON(t *testing.T) {
	if _, ok := optimisticMergeFrom(client.MergeFromWithOptions(&kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "3"}}, client.MergeFromWithOptimisticLock{})); !ok {
		t.Fatal("optimisticMergeFrom does not recognise controller-runtime's merge patch with optimistic lock (did its fields change?)")
	}
	if _, ok := optimisticMergeFrom(client.MergeFrom(&kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "3"}})); ok {
		t.Fatal("a merge patch without optimistic lock taken for one with it")
	}
	defer func() { fastMergePatch = true }()
	for _, name := range []string{"baseline", "incident-watch-lag"} {
		for seed := uint64(1); seed <= 30; seed++ {
			fastMergePatch = true
			fast := run(t, builtin(t, name, seed))
			fastMergePatch = false
			slow := run(t, builtin(t, name, seed))
			if fast.TraceHash != slow.TraceHash {
				t.Fatalf("%s seed %d: the shortcut changes the run: %s", name, seed, firstDiff(slow.Records, fast.Records))
			}
		}
	}
}

// TestSortKeys checks sortKeys against a stable sort by time, on nearly
// sorted keys (its insertion sort) and on shuffled ones (its fallback).
func TestSortKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []int{0, 3, 50, 1 << 20} {
		keys := make([]recordKey, 2000)
		for i := range keys {
			keys[i] = recordKey{t: time.Duration(i + r.IntN(spread+1) - spread/2), i: int32(i)}
			if r.IntN(5) == 0 && i > 0 {
				keys[i].t = keys[i-1].t // ties keep their order
			}
		}
		want := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b recordKey) int { return cmp.Compare(a.t, b.t) })
		sortKeys(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("spread %d: sortKeys differs from a stable sort by time", spread)
		}
	}
}

// TestDryRunIsRefused: a dry run is not modelled and says so, whichever
// other options come with it; field owners alone are no dry run.
func TestDryRunIsRefused(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	kv := &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}}
	if err := c.Create(ctx, kv); err != nil {
		t.Fatal(err)
	}
	settle(w)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":2}}`))
	if err := c.Patch(ctx, kv, patch, client.FieldOwner("me")); err != nil {
		t.Fatalf("patch with a field owner: %v", err)
	}
	for name, f := range map[string]func(){
		"patch":        func() { _ = c.Patch(ctx, kv, patch, client.FieldOwner("me"), client.DryRunAll) },
		"status patch": func() { _ = c.Status().Patch(ctx, kv, patch, client.DryRunAll, client.FieldOwner("me")) },
	} {
		func() {
			defer func() {
				if p, _ := recover().(string); !strings.Contains(p, "dry run") {
					t.Errorf("%s with dry run: panic %q, want a not-modelled harness bug", name, p)
				}
			}()
			f()
		}()
	}
}

// TestRecordStreamIsStableSort: records made ahead of a rising clock, by
// up to 40 ms, come out of the stream as the stable sort by time of all of
// them, and are checked and hashed in that order.
func TestRecordStreamIsStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	inv := builtin(t, "baseline", 1).Invariants
	for _, n := range []int{0, 1, streamBatch - 1, streamBatch, 5*streamBatch + 17} {
		var recs []history.Record
		st := newRecordStream(nil, inv, true, nil)
		now := time.Duration(0)
		for i := range n {
			now += time.Duration(r.IntN(3)) * time.Millisecond
			ahead := time.Duration(0)
			if r.IntN(4) == 0 {
				ahead = time.Duration(r.IntN(40)) * time.Millisecond
			}
			rec := history.Record{T: now + ahead, Source: history.SourceOperator, Kind: history.KindReconcileEnd, Detail: strconv.Itoa(i)}
			recs = append(recs, rec)
			st.add(rec, now)
		}
		out, hash, counts, sorted, err := st.finish()
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(recs)
		slices.SortStableFunc(want, func(a, b history.Record) int { return cmp.Compare(a.T, b.T) })
		if !slices.EqualFunc(sorted, want, func(a, b history.Record) bool { return a.T == b.T && a.Detail == b.Detail }) {
			t.Fatalf("%d records: the stream's order is not the stable sort by time", n)
		}
		th := newTraceHasher()
		for i := range want {
			th.add(&want[i])
		}
		if !bytes.Equal(hash, th.sum()) {
			t.Errorf("%d records: the stream's hash is not that of the sorted records", n)
		}
		if c := report.Counts(want); !maps.Equal(c, counts) {
			t.Errorf("%d records: the stream counts %v, Counts %v", n, counts, c)
		}
		if o := invariant.Check(want, inv); !reflect.DeepEqual(o.Results, out.Results) {
			t.Errorf("%d records: the stream's check differs from Check", n)
		}
	}
}

// TestClusterStatusEqualIsSemantic: the store's status comparison agrees
// with equality.Semantic.DeepEqual on every field of a KVCluster status.
func TestClusterStatusEqualIsSemantic(t *testing.T) {
	at := metav1.NewTime(time.Unix(100, 0))
	base := kvv1.KVClusterStatus{ReadyReplicas: 2, ObservedGeneration: 3, Conditions: []metav1.Condition{
		{Type: kvv1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 3, LastTransitionTime: at, Reason: "AllMembersReady", Message: "2/2 members ready"}}}
	variants := []func(s *kvv1.KVClusterStatus){
		func(s *kvv1.KVClusterStatus) {},
		func(s *kvv1.KVClusterStatus) { s.ReadyReplicas = 1 },
		func(s *kvv1.KVClusterStatus) { s.ObservedGeneration = 4 },
		func(s *kvv1.KVClusterStatus) { s.Conditions = nil },
		func(s *kvv1.KVClusterStatus) { s.Conditions = []metav1.Condition{} },
		func(s *kvv1.KVClusterStatus) { s.Conditions = append(s.Conditions, metav1.Condition{Type: "Other"}) },
		func(s *kvv1.KVClusterStatus) { s.Conditions[0].Type = "Other" },
		func(s *kvv1.KVClusterStatus) { s.Conditions[0].Status = metav1.ConditionFalse },
		func(s *kvv1.KVClusterStatus) { s.Conditions[0].ObservedGeneration = 2 },
		func(s *kvv1.KVClusterStatus) { s.Conditions[0].LastTransitionTime = metav1.NewTime(time.Unix(101, 0)) },
		func(s *kvv1.KVClusterStatus) {
			s.Conditions[0].LastTransitionTime = metav1.NewTime(time.Unix(100, 0).In(time.FixedZone("x", 3600)))
		},
		func(s *kvv1.KVClusterStatus) { s.Conditions[0].Reason = "MembersNotReady" },
		func(s *kvv1.KVClusterStatus) { s.Conditions[0].Message = "1/2 members ready" },
	}
	for i, vi := range variants {
		for j, vj := range variants {
			a, b := *base.DeepCopy(), *base.DeepCopy()
			vi(&a)
			vj(&b)
			if got, want := clusterStatusEqual(&a, &b), equality.Semantic.DeepEqual(a, b); got != want {
				t.Errorf("variants %d and %d: clusterStatusEqual %v, Semantic.DeepEqual %v", i, j, got, want)
			}
		}
	}
}

// TestKernelHeapRandomised: thousands of events pushed at random times,
// many at the same instant, some from inside other events, run in exactly
// the order of a stable sort by (time, scheduling order).
func TestKernelHeapRandomised(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	k := newKernel(1)
	type ev struct {
		at  time.Duration
		seq int
	}
	var want, got []ev
	seq := 0
	var schedule func(at time.Duration)
	schedule = func(at time.Duration) {
		seq++
		e := ev{at, seq}
		want = append(want, e)
		k.at(at, func() {
			got = append(got, e)
			if r.IntN(3) == 0 && seq < 20000 {
				schedule(k.now + time.Duration(r.IntN(4)))
			}
		})
	}
	for range 5000 {
		schedule(time.Duration(r.IntN(200)))
	}
	k.run(0)
	slices.SortStableFunc(want, func(a, b ev) int { return cmp.Compare(a.at, b.at) })
	if !slices.Equal(got, want) {
		t.Fatalf("%d events ran out of (time, sequence) order", len(got))
	}
}

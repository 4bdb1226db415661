package virtual

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/scenarios"
)

// withCheckShared runs f with checkShared on: every object the operator's
// client hands out without a deep copy is verified unchanged after each
// reconcile (a change panics with HarnessBugPrefix).
func withCheckShared(t *testing.T, f func()) {
	t.Helper()
	checkShared = true
	defer func() { checkShared = false }()
	f()
}

// TestSharedReadsUnchanged: the reference operator, with every seeded bug
// and under every fault and perturbation scenario, never changes an object
// that the model shared with it instead of copying; and sharing gives the
// same runs as before (the trace hashes do not depend on checkShared).
func TestSharedReadsUnchanged(t *testing.T) {
	var ss []*scenarios.Scenario
	for _, n := range scenarios.BuiltinNames() {
		for seed := uint64(1); seed <= 3; seed++ {
			if s := builtin(t, n, seed); s.Reference() && s.World == nil {
				ss = append(ss, s)
			}
		}
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		for seed := uint64(1); seed <= 3; seed++ {
			s, err := scenarios.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			s.Seed = seed
			ss = append(ss, s)
		}
	}
	for _, b := range bugs.Names() {
		s := baseline(t, 2)
		s.Operator.Bugs = []string{b}
		ss = append(ss, s)
	}
	for _, s := range ss {
		want := run(t, s).TraceHash
		withCheckShared(t, func() {
			if got := run(t, s).TraceHash; got != want {
				t.Errorf("%s seed %d: trace differs with checkShared", s.Name, s.Seed)
			}
		})
	}
}

// TestVerifySharedCatchesMutation: the check fails when a reader changes
// a listed Pod's shared parts, and not when it changes only its own copy.
func TestVerifySharedCatchesMutation(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a-0", Labels: map[string]string{kvv1.LabelCluster: "a"}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	settle(w)
	withCheckShared(t, func() {
		list := &corev1.PodList{}
		if err := c.List(ctx, list, client.MatchingLabels{kvv1.LabelCluster: "a"}); err != nil || len(list.Items) != 1 {
			t.Fatalf("list: %v, %d items", err, len(list.Items))
		}
		list.Items[0].Name = "renamed" // the caller's own field
		if err := c.verifyShared(); err != nil {
			t.Fatalf("a change to the caller's copy was reported: %v", err)
		}
		if err := c.List(ctx, list, client.MatchingLabels{kvv1.LabelCluster: "a"}); err != nil {
			t.Fatal(err)
		}
		list.Items[0].Labels["x"] = "y" // shared with the cache
		if err := c.verifyShared(); err == nil || !strings.Contains(err.Error(), "a-0") {
			t.Fatalf("a change to a shared map was not reported: %v", err)
		}
	})
}

// TestListOptionsFallback: options other than InNamespace and one
// MatchingLabels go through client.ListOptions and select the same way.
func TestListOptionsFallback(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	for _, p := range []struct{ name, cluster, ord string }{{"a-0", "a", "0"}, {"a-1", "a", "1"}, {"b-0", "b", "0"}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: p.name,
			Labels: map[string]string{kvv1.LabelCluster: p.cluster, kvv1.LabelOrdinal: p.ord}}}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	settle(w)
	names := func(opts ...client.ListOption) string {
		t.Helper()
		l := &corev1.PodList{}
		if err := c.List(ctx, l, opts...); err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, p := range l.Items {
			n = append(n, p.Name)
		}
		return strings.Join(n, ",")
	}
	for _, tc := range []struct {
		opts []client.ListOption
		want string
	}{
		{[]client.ListOption{client.MatchingLabels{kvv1.LabelOrdinal: "0"}}, "a-0,b-0"},
		{[]client.ListOption{client.MatchingLabels{kvv1.LabelCluster: "a"}, client.MatchingLabels{kvv1.LabelOrdinal: "0"}}, "a-0"},
		{[]client.ListOption{client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(labels.Set{kvv1.LabelCluster: "b"})}}, "b-0"},
		{[]client.ListOption{client.InNamespace("other"), client.MatchingLabels{kvv1.LabelCluster: "a"}}, ""},
		{[]client.ListOption{&client.ListOptions{Namespace: "default"}}, "a-0,a-1,b-0"},
	} {
		if got := names(tc.opts...); got != tc.want {
			t.Errorf("%v: listed %q, want %q", tc.opts, got, tc.want)
		}
	}
}

// TestGetSharesWithTheCache: a KVCluster from Get is a shallow copy: its
// fields are its own, its maps and status conditions are the cache's, and
// a change made through them is reported (the operator gives its
// conditions a slice of their own before it changes them).
func TestGetSharesWithTheCache(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	kv := &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a", Annotations: map[string]string{"k": "v"}}}
	if err := c.Create(ctx, kv); err != nil {
		t.Fatal(err)
	}
	settle(w)
	kv.Status.Conditions = []metav1.Condition{{Type: kvv1.ConditionReady, Status: metav1.ConditionTrue}}
	if err := c.Status().Update(ctx, kv); err != nil {
		t.Fatal(err)
	}
	settle(w)
	key := client.ObjectKey{Namespace: "default", Name: "a"}
	withCheckShared(t, func() {
		got := &kvv1.KVCluster{}
		if err := c.Get(ctx, key, got); err != nil {
			t.Fatal(err)
		}
		got.Status.ReadyReplicas = 7
		got.Status.Conditions = slices.Clone(got.Status.Conditions)
		got.Status.Conditions[0].Status = metav1.ConditionFalse
		if err := c.verifyShared(); err != nil {
			t.Fatalf("a change to the reader's own fields was reported: %v", err)
		}
		for _, change := range []func(*kvv1.KVCluster){
			func(kv *kvv1.KVCluster) { kv.Status.Conditions[0].Status = metav1.ConditionFalse },
			func(kv *kvv1.KVCluster) { kv.Annotations["k"] = "changed" },
		} {
			if err := c.Get(ctx, key, got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Conditions[0].Status != metav1.ConditionTrue || got.Annotations["k"] != "v" {
				t.Fatalf("the cached object changed: %+v", got)
			}
			change(got)
			if err := c.verifyShared(); err == nil {
				t.Fatal("a change through the shared object was not reported")
			}
			// Undo it in the cache, for the next case.
			got.Status.Conditions[0].Status, got.Annotations["k"] = metav1.ConditionTrue, "v"
		}
	})
}

// TestListItemsLentOncePerReconcile: two Lists of one reconcile get
// distinct items; the next reconcile reuses the buffer, and with
// checkShared a reader that kept items past its reconcile sees them
// zeroed (so its run would change and TestSharedReadsUnchanged fail).
func TestListItemsLentOncePerReconcile(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	c.reuseItems = true
	for _, name := range []string{"a-0", "a-1"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{kvv1.LabelCluster: "a"}}}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	settle(w)
	list := func() *corev1.PodList {
		l := &corev1.PodList{}
		if err := c.List(ctx, l, client.MatchingLabels{kvv1.LabelCluster: "a"}); err != nil || len(l.Items) != 2 {
			t.Fatalf("list: %v, %d items", err, len(l.Items))
		}
		return l
	}
	withCheckShared(t, func() {
		first, second := list(), list()
		if &first.Items[0] == &second.Items[0] {
			t.Fatal("two Lists of one reconcile share items")
		}
		if cap(first.Items) != len(first.Items) {
			t.Fatalf("items have spare capacity %d: an append would write into the buffer", cap(first.Items))
		}
		c.endReconcile()
		if first.Items[0].Name != "" && second.Items[0].Name != "" {
			t.Fatal("kept items were not zeroed at the end of the reconcile")
		}
		third := list()
		if &third.Items[0] != &first.Items[0] && &third.Items[0] != &second.Items[0] {
			t.Fatal("the next reconcile did not reuse the buffer")
		}
		if third.Items[0].Name != "a-0" || third.Items[1].Name != "a-1" {
			t.Fatalf("listed %s, %s", third.Items[0].Name, third.Items[1].Name)
		}
		c.endReconcile()
	})
}

// TestVerifyIndexCatchesDrift: a member index that disagrees with the
// cache is a harness bug, reported on the next listing.
func TestVerifyIndexCatchesDrift(t *testing.T) {
	ctx := context.Background()
	w, c := newTestWorld(t)
	for _, name := range []string{"a-0", "a-1"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{kvv1.LabelCluster: "a"}}}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	settle(w)
	opts := []client.ListOption{client.InNamespace("default"), client.MatchingLabels{kvv1.LabelCluster: "a"}}
	withCheckShared(t, func() {
		if err := c.List(ctx, &corev1.PodList{}, opts...); err != nil {
			t.Fatal(err)
		}
		k := memberKey{"default", "a"}
		c.pods.members[k] = c.pods.members[k][:1] // lose a member
		defer func() {
			if p, _ := recover().(string); !strings.Contains(p, "member index") {
				t.Fatalf("panic %q, want a member index harness bug", p)
			}
		}()
		_ = c.List(ctx, &corev1.PodList{}, opts...)
		t.Fatal("the drifted index was not caught")
	})
}

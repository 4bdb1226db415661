package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/sim/history"
)

type sink struct{ recs []history.Record }

func (s *sink) Emit(r history.Record) { s.recs = append(s.recs, r) }

func pod(name string, ord string, rv string, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv, Generation: 1,
		Labels: map[string]string{kvv1.LabelCluster: "kv", kvv1.LabelOrdinal: ord}}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func newReconciler(t *testing.T, bugNames ...string) (*Reconciler, *sink) {
	t.Helper()
	bs, err := bugs.Parse(bugNames)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	return &Reconciler{Cache: statecache.NewMap(), Bugs: bs, Events: s}, s
}

// TestOnPodEventFeedsCache: the event handler is what keeps the member cache,
// revision-checked; both kinds of delete remove the member.
func TestOnPodEventFeedsCache(t *testing.T) {
	r, s := newReconciler(t)
	if nn, ok := r.OnPodEvent("add", pod("kv-0", "0", "10", false)); !ok || nn.String() != "ns/kv" {
		t.Fatalf("add: %v %v", nn, ok)
	}
	r.OnPodEvent("update", pod("kv-0", "0", "12", true))
	r.OnPodEvent("update", pod("kv-0", "0", "11", false)) // older: refused
	if m, _ := r.Cache.Get("ns/kv", 0); !m.Ready || m.Revision != 12 {
		t.Fatalf("cache after updates: %+v", m)
	}
	r.OnPodEvent("add", pod("kv-1", "1", "13", true))
	if _, ok := r.OnPodEvent("delete-unknown", pod("kv-1", "1", "13", true)); !ok {
		t.Fatal("delete-unknown did not queue the cluster")
	}
	if _, ok := r.Cache.Get("ns/kv", 1); ok {
		t.Fatal("delete-unknown left the member in the cache")
	}
	r.OnPodEvent("delete", pod("kv-0", "0", "12", true))
	if len(r.Cache.Members("ns/kv")) != 0 {
		t.Fatal("delete left the member in the cache")
	}
	if _, ok := r.OnPodEvent("add", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other"}}); ok {
		t.Fatal("a Pod without the cluster label was queued")
	}
	if len(s.recs) != 6 || s.recs[4].Op != "delete-unknown" || s.recs[0].Kind != history.KindEvent {
		t.Fatalf("records: %+v", s.recs)
	}
}

func TestSeededEventBugs(t *testing.T) {
	// drop-tombstone: the member stays, nothing is queued.
	r, _ := newReconciler(t, bugs.DropTombstone)
	r.OnPodEvent("add", pod("kv-1", "1", "13", true))
	if _, ok := r.OnPodEvent("delete-unknown", pod("kv-1", "1", "13", true)); ok {
		t.Fatal("drop-tombstone queued the cluster")
	}
	if _, ok := r.Cache.Get("ns/kv", 1); !ok {
		t.Fatal("drop-tombstone removed the member")
	}
	r.OnPodEvent("delete", pod("kv-1", "1", "13", true))
	if _, ok := r.Cache.Get("ns/kv", 1); ok {
		t.Fatal("drop-tombstone dropped an ordinary delete too")
	}

	// stale-overwrite: an older state overwrites a newer one.
	r, _ = newReconciler(t, bugs.StaleOverwrite)
	r.OnPodEvent("update", pod("kv-0", "0", "12", true))
	r.OnPodEvent("update", pod("kv-0", "0", "11", false))
	if m, _ := r.Cache.Get("ns/kv", 0); m.Ready || m.Revision != 11 {
		t.Fatalf("stale-overwrite kept the newer state: %+v", m)
	}

	// no-enqueue-on-pod-update: the cache learns, the cluster is not queued.
	r, _ = newReconciler(t, bugs.NoEnqueueOnPodUpdate)
	if _, ok := r.OnPodEvent("add", pod("kv-0", "0", "10", false)); !ok {
		t.Fatal("add not queued")
	}
	if _, ok := r.OnPodEvent("update", pod("kv-0", "0", "12", true)); ok {
		t.Fatal("update queued")
	}
	if m, _ := r.Cache.Get("ns/kv", 0); !m.Ready {
		t.Fatal("update did not reach the cache")
	}

	// generation-predicate: a status-only update never reaches the handler.
	r, s := newReconciler(t, bugs.GenerationPredicate)
	r.OnPodEvent("add", pod("kv-0", "0", "10", false))
	if _, ok := r.OnPodEvent("update", pod("kv-0", "0", "12", true)); ok {
		t.Fatal("status-only update let through")
	}
	if m, _ := r.Cache.Get("ns/kv", 0); m.Ready || len(s.recs) != 1 {
		t.Fatalf("filtered update reached the cache or the history: %+v %d records", m, len(s.recs))
	}
	spec := pod("kv-0", "0", "14", true)
	spec.Generation = 2
	if _, ok := r.OnPodEvent("update", spec); !ok {
		t.Fatal("an update with a new generation was filtered")
	}
}

// TestPodHandlerMapsDeleteStateUnknown: controller-runtime reports a
// tombstone as a DeleteEvent with DeleteStateUnknown; the wiring passes it
// on as "delete-unknown", which the virtual backend uses too.
func TestPodHandlerMapsDeleteStateUnknown(t *testing.T) {
	r, s := newReconciler(t)
	h := &podHandler{r: r}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	h.Create(context.Background(), event.CreateEvent{Object: pod("kv-0", "0", "10", true)}, q)
	h.Delete(context.Background(), event.DeleteEvent{Object: pod("kv-0", "0", "10", true), DeleteStateUnknown: true}, q)
	if len(s.recs) != 2 || s.recs[1].Op != "delete-unknown" {
		t.Fatalf("records: %+v", s.recs)
	}
	if len(r.Cache.Members("ns/kv")) != 0 {
		t.Fatal("tombstone did not remove the member")
	}
	if q.Len() != 1 {
		t.Fatalf("queue holds %d keys, want the cluster once", q.Len())
	}
}

// TestMembersByOrdinal: the listing indexed as the former map did it:
// ascending ordinals, one Pod each (the later in the listing wins), Pods
// without a valid ordinal left out.
func TestMembersByOrdinal(t *testing.T) {
	items := []corev1.Pod{*pod("a", "2", "1", false), *pod("b", "0", "1", false), *pod("c", "x", "1", false),
		*pod("d", "2", "1", false), *pod("e", "-1", "1", false), *pod("f", "1", "1", false), *pod("g", "0", "1", false)}
	ps := membersByOrdinal(nil, items)
	var got []string
	for _, m := range ps {
		got = append(got, strconv.Itoa(m.ord)+"="+m.pod.Name)
	}
	if want := "0=g 1=f 2=d"; strings.Join(got, " ") != want {
		t.Fatalf("membersByOrdinal = %v, want %s", got, want)
	}
	if ps.get(1) != &items[5] || ps.get(3) != nil || ps.get(-1) != nil {
		t.Fatalf("get: %v %v %v", ps.get(1), ps.get(3), ps.get(-1))
	}
}

// TestReadyMessage: the status message is byte for byte what
// fmt.Sprintf("%d/%d members ready") wrote.
func TestReadyMessage(t *testing.T) {
	for _, c := range [][2]int32{{0, 0}, {3, 5}, {-1, 12}, {2147483647, -2147483648}} {
		if got, want := string(readyMessage(nil, c[0], c[1])), fmt.Sprintf("%d/%d members ready", c[0], c[1]); got != want {
			t.Fatalf("readyMessage(%d, %d) = %q, want %q", c[0], c[1], got, want)
		}
	}
}

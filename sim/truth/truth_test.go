package truth

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/sim/history"
)

func kinds(recs []history.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Kind
	}
	return out
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func pod(ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kv-0-0", Labels: map[string]string{kvv1.LabelCluster: "kv-0"}}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func TestPodLifecycle(t *testing.T) {
	tr := NewTracker()
	steps := []struct {
		p    *corev1.Pod
		want []string
	}{
		{pod(false), []string{history.KindPodCreated}},
		{pod(false), nil}, // nothing changed
		{pod(true), []string{history.KindPodReady}},
		{pod(true), nil},
		{pod(false), []string{history.KindPodUnready}},
		{nil, []string{history.KindPodDeleted}},
		{nil, nil}, // unknown pod deleted
	}
	for i, s := range steps {
		got := tr.Pod("ns/kv-0-0", s.p, int64(i+1))
		if !same(kinds(got), s.want) {
			t.Fatalf("step %d: %v, want %v", i, kinds(got), s.want)
		}
		for _, r := range got {
			if r.Cluster != "ns/kv-0" || r.RV != int64(i+1) || r.Source != history.SourceTruth {
				t.Fatalf("step %d: record %+v", i, r)
			}
		}
	}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x"}}
	if recs := tr.Pod("ns/x", other, 9); recs != nil {
		t.Fatalf("a Pod without the cluster label gave %v", kinds(recs))
	}
}

func TestClusterSpecAndStatus(t *testing.T) {
	tr := NewTracker()
	kv := &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kv-0", Generation: 1}, Spec: kvv1.KVClusterSpec{Replicas: 2}}
	if got := kinds(tr.Cluster("ns/kv-0", kv, 1)); !same(got, []string{history.KindClusterSpec}) {
		t.Fatalf("create: %v", got)
	}
	kv.Annotations = map[string]string{"a": "b"} // metadata only
	if got := tr.Cluster("ns/kv-0", kv, 2); got != nil {
		t.Fatalf("annotation change gave %v", kinds(got))
	}
	kv.Status = kvv1.KVClusterStatus{ReadyReplicas: 1, ObservedGeneration: 1, Conditions: []metav1.Condition{{Type: kvv1.ConditionReady, Status: metav1.ConditionFalse}}}
	got := tr.Cluster("ns/kv-0", kv, 3)
	if !same(kinds(got), []string{history.KindClusterStatus}) || *got[0].Ready != 1 || got[0].Condition != "False" {
		t.Fatalf("status: %+v", got)
	}
	kv.Generation, kv.Spec.Replicas = 2, 3
	if got := kinds(tr.Cluster("ns/kv-0", kv, 4)); !same(got, []string{history.KindClusterSpec}) {
		t.Fatalf("scale: %v", got)
	}
	if got := kinds(tr.Cluster("ns/kv-0", nil, 5)); !same(got, []string{history.KindClusterDeleted}) {
		t.Fatalf("delete: %v", got)
	}
}

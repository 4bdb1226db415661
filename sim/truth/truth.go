package truth

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/sim/history"
)

// Tracker remembers the last committed state of each object. The zero
// value is not usable; use NewTracker.
type Tracker struct {
	pods map[string]podState
	kvs  map[string]clusterState
}

type podState struct {
	cluster string
	ready   bool
}

type clusterState struct {
	generation int64
	replicas   int32
	ready      int32
	observed   int64
	condition  string
	hasStatus  bool
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{pods: map[string]podState{}, kvs: map[string]clusterState{}}
}

// Pod returns the records for a Pod committed at revision rev; key is
// "namespace/name" and p is nil when the Pod was deleted. Pods without the
// cluster label are not members and give none. The records have no T: the
// caller stamps them.
func (t *Tracker) Pod(key string, p *corev1.Pod, rev int64) []history.Record {
	if p == nil {
		prev, ok := t.pods[key]
		if !ok {
			return nil
		}
		delete(t.pods, key)
		return []history.Record{{Source: history.SourceTruth, Kind: history.KindPodDeleted, Pod: key, Cluster: prev.cluster, RV: rev}}
	}
	cluster, ok := p.Labels[kvv1.LabelCluster]
	if !ok {
		return nil
	}
	st := podState{cluster: p.Namespace + "/" + cluster, ready: controller.PodReady(p) && p.DeletionTimestamp == nil}
	prev, seen := t.pods[key]
	t.pods[key] = st
	base := history.Record{Source: history.SourceTruth, Pod: key, Cluster: st.cluster, RV: rev}
	var out []history.Record
	if !seen {
		r := base
		r.Kind = history.KindPodCreated
		out = append(out, r)
	}
	if st.ready != prev.ready {
		r := base
		r.Kind = history.KindPodUnready
		if st.ready {
			r.Kind = history.KindPodReady
		}
		out = append(out, r)
	}
	return out
}

// Cluster returns the records for a KVCluster committed at revision rev;
// kv is nil when it was deleted.
func (t *Tracker) Cluster(key string, kv *kvv1.KVCluster, rev int64) []history.Record {
	if kv == nil {
		delete(t.kvs, key)
		return []history.Record{{Source: history.SourceTruth, Kind: history.KindClusterDeleted, Cluster: key, RV: rev}}
	}
	st := clusterState{generation: kv.Generation, replicas: kv.Spec.Replicas}
	if c := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionReady); c != nil || kv.Status.ObservedGeneration != 0 {
		st.hasStatus = true
		st.ready, st.observed = kv.Status.ReadyReplicas, kv.Status.ObservedGeneration
		if c != nil {
			st.condition = string(c.Status)
		}
	}
	prev, seen := t.kvs[key]
	t.kvs[key] = st
	var out []history.Record
	if !seen || prev.generation != st.generation || prev.replicas != st.replicas {
		out = append(out, history.Record{Source: history.SourceTruth, Kind: history.KindClusterSpec, Cluster: key,
			Generation: st.generation, Replicas: history.Int32(st.replicas), RV: rev})
	}
	if st.hasStatus && (!prev.hasStatus || prev.ready != st.ready || prev.observed != st.observed || prev.condition != st.condition) {
		out = append(out, history.Record{Source: history.SourceTruth, Kind: history.KindClusterStatus, Cluster: key,
			Ready: history.Int32(st.ready), ObservedGeneration: st.observed, Condition: st.condition, RV: rev})
	}
	return out
}

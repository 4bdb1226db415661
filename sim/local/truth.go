package local

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/driftlab/driftlab/operator"
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/sim/history"
)

// Registry key prefixes kube-apiserver stores our objects under.
const (
	podPrefix     = "/registry/pods/"
	clusterPrefix = "/registry/" + "kv.driftlab.io" + "/kvclusters/"
)

// truthWatcher watches the embedded etcd in-process and turns committed
// changes to member Pods and KVClusters into truth records, stamped when the
// commit is seen. It decodes the objects as kube-apiserver stored them
// (protobuf for Pods, JSON for custom resources).
type truthWatcher struct {
	rec     func(history.Record)
	decoder runtime.Decoder
	pods    map[string]podTruth     // etcd key -> last state
	kvs     map[string]clusterTruth // etcd key -> last state
}

type podTruth struct {
	key, cluster string
	ready        bool
}

type clusterTruth struct {
	generation int64
	replicas   int32
	ready      int32
	observed   int64
	condition  string
	hasStatus  bool
}

func newTruthWatcher(rec func(history.Record)) *truthWatcher {
	return &truthWatcher{
		rec:     rec,
		decoder: serializer.NewCodecFactory(operator.Scheme()).UniversalDeserializer(),
		pods:    map[string]podTruth{},
		kvs:     map[string]clusterTruth{},
	}
}

// run watches from revision rev+1 until ctx is done. ready is closed once the
// watch is established.
func (w *truthWatcher) run(ctx context.Context, c *clientv3.Client, rev int64, ready chan<- struct{}) error {
	wctx := clientv3.WithRequireLeader(ctx)
	wch := c.Watch(wctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	first := true
	for resp := range wch {
		if first {
			close(ready)
			first = false
		}
		if err := resp.Err(); err != nil {
			return fmt.Errorf("truth watch: %w", err)
		}
		for _, ev := range resp.Events {
			k := string(ev.Kv.Key)
			switch {
			case strings.HasPrefix(k, podPrefix):
				w.pod(k, ev)
			case strings.HasPrefix(k, clusterPrefix):
				w.cluster(k, ev)
			}
		}
	}
	if first {
		close(ready)
	}
	return ctx.Err()
}

// objKey turns "/registry/pods/ns/name" into "ns/name".
func objKey(etcdKey, prefix string) string { return strings.TrimPrefix(etcdKey, prefix) }

func (w *truthWatcher) pod(k string, ev *clientv3.Event) {
	if ev.Type == clientv3.EventTypeDelete {
		if prev, ok := w.pods[k]; ok {
			w.rec(history.Record{Source: history.SourceTruth, Kind: history.KindPodDeleted, Pod: prev.key, Cluster: prev.cluster, RV: ev.Kv.ModRevision})
			delete(w.pods, k)
		}
		return
	}
	obj, _, err := w.decoder.Decode(ev.Kv.Value, nil, nil)
	if err != nil {
		w.rec(history.Record{Source: history.SourceHarness, Kind: "decode-error", Detail: fmt.Sprintf("%s: %v", k, err)})
		return
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	cluster, ok := p.Labels[kvv1.LabelCluster]
	if !ok {
		return
	}
	st := podTruth{key: objKey(k, podPrefix), cluster: p.Namespace + "/" + cluster, ready: controller.PodReady(p) && p.DeletionTimestamp == nil}
	prev, seen := w.pods[k]
	w.pods[k] = st
	base := history.Record{Source: history.SourceTruth, Pod: st.key, Cluster: st.cluster, RV: ev.Kv.ModRevision}
	if !seen {
		r := base
		r.Kind = history.KindPodCreated
		w.rec(r)
	}
	if st.ready != prev.ready {
		r := base
		r.Kind = history.KindPodUnready
		if st.ready {
			r.Kind = history.KindPodReady
		}
		w.rec(r)
	}
}

func (w *truthWatcher) cluster(k string, ev *clientv3.Event) {
	key := objKey(k, clusterPrefix)
	if ev.Type == clientv3.EventTypeDelete {
		delete(w.kvs, k)
		w.rec(history.Record{Source: history.SourceTruth, Kind: history.KindClusterDeleted, Cluster: key, RV: ev.Kv.ModRevision})
		return
	}
	obj, _, err := w.decoder.Decode(ev.Kv.Value, nil, nil)
	if err != nil {
		w.rec(history.Record{Source: history.SourceHarness, Kind: "decode-error", Detail: fmt.Sprintf("%s: %v", k, err)})
		return
	}
	kv, ok := obj.(*kvv1.KVCluster)
	if !ok {
		return
	}
	st := clusterTruth{generation: kv.Generation, replicas: kv.Spec.Replicas}
	if c := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionReady); c != nil || kv.Status.ObservedGeneration != 0 {
		st.hasStatus = true
		st.ready, st.observed = kv.Status.ReadyReplicas, kv.Status.ObservedGeneration
		if c != nil {
			st.condition = string(c.Status)
		}
	}
	prev, seen := w.kvs[k]
	w.kvs[k] = st
	if !seen || prev.generation != st.generation || prev.replicas != st.replicas {
		w.rec(history.Record{Source: history.SourceTruth, Kind: history.KindClusterSpec, Cluster: key, Generation: st.generation, Replicas: history.Int32(st.replicas), RV: ev.Kv.ModRevision})
	}
	if st.hasStatus && (!prev.hasStatus || prev.ready != st.ready || prev.observed != st.observed || prev.condition != st.condition) {
		w.rec(history.Record{Source: history.SourceTruth, Kind: history.KindClusterStatus, Cluster: key,
			Ready: history.Int32(st.ready), ObservedGeneration: st.observed, Condition: st.condition, RV: ev.Kv.ModRevision})
	}
}

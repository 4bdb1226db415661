package local

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/driftlab/driftlab/operator"
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/truth"
)

// Registry key prefixes kube-apiserver stores our objects under.
const (
	podPrefix     = "/registry/pods/"
	clusterPrefix = "/registry/" + "kv.driftlab.io" + "/kvclusters/"
)

// truthWatcher watches the embedded etcd in-process and turns committed
// changes to member Pods and KVClusters into truth records (by the rules of
// sim/truth), stamped when the commit is seen. It decodes the objects as
// kube-apiserver stored them (protobuf for Pods, JSON for custom resources).
type truthWatcher struct {
	rec     func(history.Record)
	decoder runtime.Decoder
	tracker *truth.Tracker
}

func newTruthWatcher(rec func(history.Record)) *truthWatcher {
	return &truthWatcher{
		rec:     rec,
		decoder: serializer.NewCodecFactory(operator.Scheme()).UniversalDeserializer(),
		tracker: truth.NewTracker(),
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
			var recs []history.Record
			switch {
			case strings.HasPrefix(k, podPrefix):
				var p *corev1.Pod
				if ev.Type != clientv3.EventTypeDelete {
					if p, _ = w.decode(k, ev.Kv.Value).(*corev1.Pod); p == nil {
						continue
					}
				}
				recs = w.tracker.Pod(strings.TrimPrefix(k, podPrefix), p, ev.Kv.ModRevision)
			case strings.HasPrefix(k, clusterPrefix):
				var kv *kvv1.KVCluster
				if ev.Type != clientv3.EventTypeDelete {
					if kv, _ = w.decode(k, ev.Kv.Value).(*kvv1.KVCluster); kv == nil {
						continue
					}
				}
				recs = w.tracker.Cluster(strings.TrimPrefix(k, clusterPrefix), kv, ev.Kv.ModRevision)
			}
			for _, r := range recs {
				w.rec(r)
			}
		}
	}
	if first {
		close(ready)
	}
	return ctx.Err()
}

// decode decodes a stored object; on failure it records a decode-error and
// returns a typed nil of the kind the key calls for.
func (w *truthWatcher) decode(k string, value []byte) runtime.Object {
	var empty runtime.Object = (*kvv1.KVCluster)(nil)
	if strings.HasPrefix(k, podPrefix) {
		empty = (*corev1.Pod)(nil)
	}
	obj, _, err := w.decoder.Decode(value, nil, nil)
	if err != nil {
		w.rec(history.Record{Source: history.SourceHarness, Kind: "decode-error", Detail: fmt.Sprintf("%s: %v", k, err)})
		return empty
	}
	switch obj.(type) {
	case *corev1.Pod, *kvv1.KVCluster:
		return obj
	}
	return empty
}

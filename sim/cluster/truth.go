package cluster

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/truth"
)

// truthWatcher turns what apiserver watches deliver (member Pods, and
// KVClusters, in one namespace) into truth records by the rules of
// sim/truth. With derive set (the operator runs elsewhere), each status
// change also gives a status-write record.
type truthWatcher struct {
	c      client.WithWatch
	cs     kubernetes.Interface
	ns     string
	rec    func(history.Record)
	derive bool

	tracker *truth.Tracker
}

type watchFunc func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)

// WatchWithContext starts a watch (cache.WatcherWithContext).
func (f watchFunc) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return f(ctx, o)
}

func rv(obj metav1.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
	return n
}

// run lists both kinds, feeds the tracker, then watches from the lists'
// resourceVersions until ctx is done. ready gets nil once both watches
// are established, or the error that stopped them.
func (w *truthWatcher) run(ctx context.Context, ready chan<- error) error {
	w.tracker = truth.NewTracker()
	sel := metav1.ListOptions{LabelSelector: kvv1.LabelCluster}
	pods, err := w.cs.CoreV1().Pods(w.ns).List(ctx, sel)
	if err != nil {
		ready <- fmt.Errorf("truth: listing Pods: %w", err)
		return nil
	}
	var kvs kvv1.KVClusterList
	if err := w.c.List(ctx, &kvs, client.InNamespace(w.ns)); err != nil {
		ready <- fmt.Errorf("truth: listing KVClusters: %w", err)
		return nil
	}
	for i := range pods.Items {
		w.pod(watch.Added, &pods.Items[i])
	}
	for i := range kvs.Items {
		w.cluster(watch.Added, &kvs.Items[i])
	}
	podW, err := watchtools.NewRetryWatcherWithContext(ctx, pods.ResourceVersion, watchFunc(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.LabelSelector = kvv1.LabelCluster
		return w.cs.CoreV1().Pods(w.ns).Watch(ctx, o)
	}))
	if err != nil {
		ready <- fmt.Errorf("truth: watching Pods: %w", err)
		return nil
	}
	defer podW.Stop()
	kvW, err := watchtools.NewRetryWatcherWithContext(ctx, kvs.ResourceVersion, watchFunc(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return w.c.Watch(ctx, &kvv1.KVClusterList{}, &client.ListOptions{Namespace: w.ns, Raw: &o})
	}))
	if err != nil {
		ready <- fmt.Errorf("truth: watching KVClusters: %w", err)
		return nil
	}
	defer kvW.Stop()
	ready <- nil
	podCh, kvCh := podW.ResultChan(), kvW.ResultChan()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-podCh:
			if !ok {
				return w.closed(ctx, "Pods")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod {
				w.pod(ev.Type, p)
			} else if ev.Type == watch.Error {
				w.rec(history.Record{Source: history.SourceHarness, Kind: "watch-error", Detail: fmt.Sprintf("Pods: %v", ev.Object)})
			}
		case ev, ok := <-kvCh:
			if !ok {
				return w.closed(ctx, "KVClusters")
			}
			if kv, isKV := ev.Object.(*kvv1.KVCluster); isKV {
				w.cluster(ev.Type, kv)
			} else if ev.Type == watch.Error {
				w.rec(history.Record{Source: history.SourceHarness, Kind: "watch-error", Detail: fmt.Sprintf("KVClusters: %v", ev.Object)})
			}
		}
	}
}

func (w *truthWatcher) closed(ctx context.Context, what string) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("truth: the watch of %s ended (resourceVersion too old?); the history after it is incomplete", what)
}

func (w *truthWatcher) pod(t watch.EventType, p *corev1.Pod) {
	if t != watch.Added && t != watch.Modified && t != watch.Deleted {
		return
	}
	key := p.Namespace + "/" + p.Name
	obj := p
	if t == watch.Deleted {
		obj = nil
	}
	for _, r := range w.tracker.Pod(key, obj, rv(p)) {
		w.rec(r)
	}
}

func (w *truthWatcher) cluster(t watch.EventType, kv *kvv1.KVCluster) {
	if t != watch.Added && t != watch.Modified && t != watch.Deleted {
		return
	}
	key := kv.Namespace + "/" + kv.Name
	obj := kv
	if t == watch.Deleted {
		obj = nil
	}
	for _, r := range w.tracker.Cluster(key, obj, rv(kv)) {
		w.rec(r)
		if w.derive && r.Kind == history.KindClusterStatus {
			w.rec(history.Record{Source: history.SourceOperator, Kind: history.KindStatusWrite, Cluster: r.Cluster,
				Ready: r.Ready, ObservedGeneration: r.ObservedGeneration, RV: r.RV, Detail: "derived from the apiserver watch"})
		}
	}
}

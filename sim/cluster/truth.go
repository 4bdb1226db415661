package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/history"
)

type watchFunc func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)

// WatchWithContext starts a watch (cache.WatcherWithContext).
func (f watchFunc) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return f(ctx, o)
}

func rv(obj metav1.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
	return n
}

// watchTruth lists every kind the subject's tracker needs in the
// workload's namespace, hands the objects to commit, then watches each
// from its list's resourceVersion (RetryWatcher) until ctx is done. The
// records are stamped when the watch delivers them; the resourceVersion
// is the record's RV. ready gets nil once every watch is established.
func watchTruth(ctx context.Context, dyn dynamic.Interface, env *harness.Env, commit harness.CommitFunc, record func(history.Record), ready chan<- error) error {
	ns := env.Scenario.Workload.Namespace
	type stream struct {
		index int
		what  string
		w     *watchtools.RetryWatcher
	}
	var streams []stream
	defer func() {
		for _, s := range streams {
			s.w.Stop()
		}
	}()
	for i, wk := range env.Subject.Watched() {
		if !wk.Served {
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(wk.GVR)
		if wk.Namespaced {
			ri = dyn.Resource(wk.GVR).Namespace(ns)
		}
		list, err := ri.List(ctx, metav1.ListOptions{})
		if err != nil {
			ready <- fmt.Errorf("truth: listing %s: %w", wk.GVR.Resource, err)
			return nil
		}
		for j := range list.Items {
			u := &list.Items[j]
			commit(i, keyOf(u), u, rv(u))
		}
		w, err := watchtools.NewRetryWatcherWithContext(ctx, list.GetResourceVersion(), watchFunc(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return ri.Watch(ctx, o)
		}))
		if err != nil {
			ready <- fmt.Errorf("truth: watching %s: %w", wk.GVR.Resource, err)
			return nil
		}
		streams = append(streams, stream{index: i, what: wk.GVR.Resource, w: w})
	}
	ready <- nil
	var wg sync.WaitGroup
	errs := make(chan error, len(streams))
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-s.w.ResultChan():
					if !ok {
						if ctx.Err() == nil {
							errs <- fmt.Errorf("truth: the watch of %s ended (resourceVersion too old?); the history after it is incomplete", s.what)
						}
						return
					}
					u, isObj := ev.Object.(*unstructured.Unstructured)
					switch {
					case ev.Type == watch.Error || !isObj:
						record(history.Record{Source: history.SourceHarness, Kind: "watch-error", Detail: fmt.Sprintf("%s: %v", s.what, ev.Object)})
					case ev.Type == watch.Deleted:
						commit(s.index, keyOf(u), nil, rv(u))
					case ev.Type == watch.Added || ev.Type == watch.Modified:
						commit(s.index, keyOf(u), u, rv(u))
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func keyOf(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

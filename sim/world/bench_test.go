package world_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/world"
)

// readyDelay is the test kubelet's delay before a bound Pod is Ready in
// BenchmarkColdStart; the Deployment figure is reported beyond it.
const readyDelay = 500 * time.Millisecond

// BenchmarkColdStart measures issue 16's two figures, over 5 interleaved
// pairs (the order alternates within a pair):
//   - cold start of etcd + kube-apiserver alone against etcd + kube-apiserver
//   - controller-manager + scheduler + 3 Nodes ready (median of each, and
//     the difference), with each world part's start-up;
//     and the median of the differences within a pair;
//   - on the fresh world, how long a 3-replica Deployment takes from create
//     to availableReplicas=3, less the kubelet's readyDelay.
//
// Run: go test ./sim/world/ -run '^$' -bench ColdStart -benchtime 1x
func BenchmarkColdStart(b *testing.B) {
	needPlane(b)
	const pairs = 5
	for range b.N {
		var off, on, diff, cm, sched, nodes, avail []time.Duration
		for i := range pairs {
			order := []bool{false, true}
			if i%2 == 1 {
				order = []bool{true, false}
			}
			for _, withWorld := range order {
				r := coldStart(b, withWorld)
				if !withWorld {
					off = append(off, r.total)
					continue
				}
				on = append(on, r.total)
				cm = append(cm, r.startup.ControllerManager)
				sched = append(sched, r.startup.Scheduler)
				nodes = append(nodes, r.startup.Nodes)
				avail = append(avail, r.available)
			}
			diff = append(diff, on[i]-off[i])
		}
		b.Logf("apiserver only: %v", off)
		b.Logf("with the world: %v", on)
		b.Logf("difference within each pair: %v", diff)
		b.Logf("controller-manager %v; scheduler %v; nodes %v", cm, sched, nodes)
		b.Logf("Deployment available beyond the %s ready delay: %v", readyDelay, avail)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(median(off)), "apiserver-only-ms")
		b.ReportMetric(ms(median(on)), "with-world-ms")
		b.ReportMetric(ms(median(on)-median(off)), "world-extra-ms")
		b.ReportMetric(ms(median(diff)), "pair-diff-ms")
		b.ReportMetric(ms(median(cm)), "controller-manager-ms")
		b.ReportMetric(ms(median(sched)), "scheduler-ms")
		b.ReportMetric(ms(median(nodes)), "nodes-ms")
		b.ReportMetric(ms(median(avail)), "deploy-available-beyond-ready-ms")
	}
}

type coldResult struct {
	total, available time.Duration
	startup          world.Startup
}

func coldStart(b *testing.B, withWorld bool) coldResult {
	dir := b.TempDir()
	ctx := context.Background()
	var r coldResult
	t0 := time.Now()
	env, err := local.Start(ctx, local.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Stop()
	if !withWorld {
		r.total = time.Since(t0)
		return r
	}
	w, err := world.Start(ctx, config(env, filepath.Join(dir, "world"), 3))
	if err != nil {
		b.Fatal(err)
	}
	r.total = time.Since(t0)
	r.startup = w.Startup
	defer w.Stop()

	cs := clientset(b, env)
	k := startReadyKubelet(b, cs, w.Nodes, readyDelay)
	defer k.Close()
	d, err := timeToAvailable(ctx, cs, "default", "web", 3)
	if err != nil {
		b.Fatal(err)
	}
	r.available = d - readyDelay
	return r
}

// timeToAvailable creates a Deployment of n replicas and returns how long
// it took until a watch saw availableReplicas=n.
func timeToAvailable(ctx context.Context, cs kubernetes.Interface, ns, name string, n int32) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	watch, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		return 0, err
	}
	defer watch.Stop()
	t0 := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name, n), metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	for ev := range watch.ResultChan() {
		if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Status.AvailableReplicas == n {
			return time.Since(t0), nil
		}
	}
	return 0, fmt.Errorf("deployment %s/%s not available=%d: %w", ns, name, n, ctx.Err())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

package kubelet

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/workload"
)

// Sampler draws Pod-ready delays from a seeded distribution.
type Sampler struct {
	Dist scenarios.Distribution
	Seed uint64
}

// Delay returns the ready delay of the n-th Pod (0-based) named pod.
func (s Sampler) Delay(pod string, n int) time.Duration {
	r := workload.Stream(s.Seed, fmt.Sprintf("kubelet/%s/%d", pod, n))
	lo, hi := s.Dist.Min.Duration, s.Dist.Max.Duration
	switch s.Dist.Distribution {
	case "constant":
		return lo
	case "exponential":
		d := lo + time.Duration(r.ExpFloat64()*float64(s.Dist.Mean.Duration))
		return min(d, hi)
	default: // uniform
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(math.Floor(r.Float64()*float64(hi-lo)))
	}
}

// Kubelet marks member Pods Ready after their sampled delay.
type Kubelet struct {
	// Client writes Pod status.
	Client kubernetes.Interface
	// Sampler draws each Pod's delay.
	Sampler Sampler
	// Record receives a record per status write; nil discards.
	Record func(history.Record)

	mu      sync.Mutex
	seen    map[string]int // pod name -> incarnations seen
	pending map[types.UID]*time.Timer
	wg      sync.WaitGroup
}

// Run watches member Pods and marks them Ready until ctx is done. It
// returns once its informer has stopped and no status write is in flight.
func (k *Kubelet) Run(ctx context.Context) error {
	k.seen = map[string]int{}
	k.pending = map[types.UID]*time.Timer{}
	f := informers.NewSharedInformerFactoryWithOptions(k.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = kvv1.LabelCluster }))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				k.schedule(ctx, p)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				k.cancel(p.UID)
			}
		},
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	k.mu.Lock()
	for uid, t := range k.pending {
		if t.Stop() {
			k.wg.Done()
		}
		delete(k.pending, uid)
	}
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}

func (k *Kubelet) schedule(ctx context.Context, p *corev1.Pod) {
	if p.DeletionTimestamp != nil || isReady(p) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.pending[p.UID]; ok {
		return
	}
	n := k.seen[p.Namespace+"/"+p.Name]
	k.seen[p.Namespace+"/"+p.Name] = n + 1
	d := k.Sampler.Delay(p.Name, n)
	ns, name, uid := p.Namespace, p.Name, p.UID
	k.wg.Add(1)
	k.pending[uid] = time.AfterFunc(d, func() {
		defer k.wg.Done()
		k.mu.Lock()
		_, live := k.pending[uid]
		delete(k.pending, uid)
		k.mu.Unlock()
		if live && ctx.Err() == nil {
			k.markReady(ctx, ns, name, uid)
		}
	})
}

func (k *Kubelet) cancel(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.pending[uid]; ok {
		if t.Stop() {
			k.wg.Done()
		}
		delete(k.pending, uid)
	}
}

func (k *Kubelet) markReady(ctx context.Context, ns, name string, uid types.UID) {
	st := ReadyStatus(metav1.Now())
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var p *corev1.Pod
		p, err = k.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || p.UID != uid {
			break // gone or replaced: nothing to report
		}
		p.Status = st
		_, err = k.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: "driftlab-kubelet"})
		if !apierrors.IsConflict(err) {
			break
		}
	}
	if apierrors.IsNotFound(err) || ctx.Err() != nil {
		return
	}
	if k.Record != nil {
		rec := history.Record{Source: history.SourceKubelet, Kind: history.KindKubeletReady, Pod: ns + "/" + name}
		if err != nil {
			rec.Err = err.Error()
		}
		k.Record(rec)
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ReadyStatus is the status the simulated kubelet writes for a member Pod
// that came up at now: Running, every condition True, its container ready.
func ReadyStatus(now metav1.Time) corev1.PodStatus {
	return corev1.PodStatus{
		Phase:     corev1.PodRunning,
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "kv", Image: controller.MemberImage, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
}

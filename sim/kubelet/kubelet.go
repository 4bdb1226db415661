package kubelet

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

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
		// In floating point, capped before the conversion: a huge mean
		// must not overflow a Duration. float64(hi-lo) may round up past
		// hi-lo, so the sum is capped again.
		if hi <= lo {
			return lo
		}
		tail := r.ExpFloat64() * float64(s.Dist.Mean.Duration)
		if !(tail < float64(hi-lo)) {
			return hi
		}
		if d := lo + time.Duration(math.Max(tail, 0)); d >= lo && d <= hi {
			return d
		}
		return hi
	default: // uniform
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(math.Floor(r.Float64()*float64(hi-lo)))
	}
}

// Kubelet marks the Pods of a namespace Running and Ready after their
// sampled delay, whoever created them, as a kubelet would once their
// containers started.
type Kubelet struct {
	// Client writes Pod status.
	Client kubernetes.Interface
	// Sampler draws each Pod's delay.
	Sampler Sampler
	// Record receives a record per status write; nil discards.
	Record func(history.Record)
	// Namespace is where it serves Pods; empty means every namespace.
	Namespace string
	// LabelKeys, when set, limits it to Pods that carry all these labels
	// (the subject's Pod selector keys).
	LabelKeys []string
	// Nodes, when set, are the simulated Nodes it is the kubelet of: it
	// serves the Pods the scheduler bound to them, and finishes their
	// graceful deletion (deletes them once their deletion begins), as a
	// kubelet does once their containers stopped. Without Nodes it serves
	// every Pod at once, bound or not (a plane without a scheduler).
	Nodes []string

	mu      sync.Mutex
	seen    map[string]int // pod name -> incarnations seen
	started map[types.UID]bool
	pending map[types.UID]*time.Timer
	deleted map[types.UID]bool
	nodes   map[string]bool
	wg      sync.WaitGroup
}

// Run watches the Pods it serves and marks them Ready until ctx is done.
// It returns once its informer has stopped and no status write is in
// flight.
func (k *Kubelet) Run(ctx context.Context) error {
	k.seen = map[string]int{}
	k.started = map[types.UID]bool{}
	k.pending = map[types.UID]*time.Timer{}
	k.deleted = map[types.UID]bool{}
	k.nodes = map[string]bool{}
	for _, n := range k.Nodes {
		k.nodes[n] = true
	}
	opts := []informers.SharedInformerOption{informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = strings.Join(k.LabelKeys, ",")
	})}
	if k.Namespace != "" {
		opts = append(opts, informers.WithNamespace(k.Namespace))
	}
	f := informers.NewSharedInformerFactoryWithOptions(k.Client, 0, opts...)
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				k.observe(ctx, p)
			}
		},
		UpdateFunc: func(_, obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				k.observe(ctx, p)
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

// serves reports whether the Pod is this kubelet's: bound to one of its
// Nodes, or any Pod when it has none.
func (k *Kubelet) serves(p *corev1.Pod) bool {
	if len(k.nodes) == 0 {
		return true
	}
	return k.nodes[p.Spec.NodeName]
}

// observe reacts to what a Pod is now: a deletion begun, or a Pod to run.
func (k *Kubelet) observe(ctx context.Context, p *corev1.Pod) {
	if !k.serves(p) {
		return
	}
	if p.DeletionTimestamp != nil {
		k.cancel(p.UID)
		if len(k.nodes) > 0 {
			k.finishDeletion(ctx, p)
		}
		return
	}
	if isReady(p) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return
	}
	k.schedule(ctx, p)
}

// finishDeletion deletes a bound Pod whose graceful deletion began: its
// containers are gone at once.
func (k *Kubelet) finishDeletion(ctx context.Context, p *corev1.Pod) {
	k.mu.Lock()
	if k.deleted[p.UID] {
		k.mu.Unlock()
		return
	}
	k.deleted[p.UID] = true
	k.mu.Unlock()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		uid := p.UID
		err := k.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptrTo(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil && k.Record != nil {
			k.Record(history.Record{Source: history.SourceKubelet, Kind: KindKubeletDeleted, Pod: p.Namespace + "/" + p.Name, Err: err.Error()})
		}
	}()
}

// KindKubeletDeleted is the record of a graceful deletion the simulated
// kubelet could not finish.
const KindKubeletDeleted = "kubelet-deleted"

func ptrTo[T any](v T) *T { return &v }

func (k *Kubelet) schedule(ctx context.Context, p *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started[p.UID] {
		return
	}
	k.started[p.UID] = true
	n := k.seen[p.Namespace+"/"+p.Name]
	k.seen[p.Namespace+"/"+p.Name] = n + 1
	d := k.Sampler.Delay(p.Name, n)
	ns, name, uid := p.Namespace, p.Name, p.UID
	// A Pod whose containers end (a Job's) succeeds after it ran as long
	// again as it took to start.
	runs := p.Spec.RestartPolicy == corev1.RestartPolicyAlways || p.Spec.RestartPolicy == ""
	k.wg.Add(1)
	k.pending[uid] = time.AfterFunc(d, func() {
		defer k.wg.Done()
		k.mu.Lock()
		_, live := k.pending[uid]
		delete(k.pending, uid)
		k.mu.Unlock()
		if !live || ctx.Err() != nil {
			return
		}
		k.markReady(ctx, ns, name, uid)
		if !runs {
			k.complete(ctx, ns, name, uid, d)
		}
	})
}

// complete marks a terminating Pod Succeeded after d.
func (k *Kubelet) complete(ctx context.Context, ns, name string, uid types.UID, d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	k.wg.Add(1)
	k.pending[uid] = time.AfterFunc(d, func() {
		defer k.wg.Done()
		k.mu.Lock()
		_, live := k.pending[uid]
		delete(k.pending, uid)
		k.mu.Unlock()
		if live && ctx.Err() == nil {
			k.writeStatus(ctx, ns, name, uid, func(now metav1.Time, p *corev1.Pod) corev1.PodStatus { return SucceededStatus(now, p) }, KindKubeletSucceeded)
		}
	})
}

// KindKubeletSucceeded is the record of a Pod the simulated kubelet
// completed (its containers exited 0).
const KindKubeletSucceeded = "kubelet-succeeded"

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
	k.writeStatus(ctx, ns, name, uid, ReadyStatus, history.KindKubeletReady)
}

// writeStatus writes the status status gives the Pod, retrying conflicts,
// and records it as kind.
func (k *Kubelet) writeStatus(ctx context.Context, ns, name string, uid types.UID, status func(metav1.Time, *corev1.Pod) corev1.PodStatus, kind string) {
	now := metav1.Now()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var p *corev1.Pod
		p, err = k.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.UID != uid {
			return // replaced: nothing to report
		}
		if err != nil {
			break
		}
		p.Status = status(now, p)
		_, err = k.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: "driftlab-kubelet"})
		if !apierrors.IsConflict(err) {
			break
		}
	}
	if apierrors.IsNotFound(err) || ctx.Err() != nil {
		return
	}
	if k.Record != nil {
		rec := history.Record{Source: history.SourceKubelet, Kind: kind, Pod: ns + "/" + name}
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

// ReadyStatus is the status the simulated kubelet writes for a Pod that
// came up at now: Running, every condition True, each of its containers
// running and ready, and a Pod IP derived from its namespace and name (the
// same on every backend and every run).
func ReadyStatus(now metav1.Time, p *corev1.Pod) corev1.PodStatus {
	ip := PodIP(p.Namespace, p.Name)
	st := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		StartTime: &now,
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	for _, c := range p.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}

var started = true

// SucceededStatus is the status of a Pod whose containers all exited 0 at
// now.
func SucceededStatus(now metav1.Time, p *corev1.Pod) corev1.PodStatus {
	st := ReadyStatus(now, p)
	st.Phase = corev1.PodSucceeded
	for i := range st.Conditions {
		if c := &st.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			c.Status, c.Reason = corev1.ConditionFalse, "PodCompleted"
		}
	}
	for i := range st.ContainerStatuses {
		c := &st.ContainerStatuses[i]
		c.Ready, c.Started = false, &notStarted
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: *st.StartTime, FinishedAt: now}}
	}
	return st
}

var notStarted = false

// PodIP is a Pod's simulated IP: 10.x.y.z from a hash of its namespace and
// name.
func PodIP(ns, name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ns + "/" + name))
	v := h.Sum32()
	return fmt.Sprintf("10.%d.%d.%d", 64+(v>>16)&0x3f, (v>>8)&0xff, 1+v&0xfe)
}

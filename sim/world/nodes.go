package world

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// SimulatedNodeLabel marks the Nodes a world creates (value "true").
const SimulatedNodeLabel = "driftlab.io/simulated-node"

// nodeLeaseNamespace is where kubelets keep their heartbeat Leases.
const nodeLeaseNamespace = "kube-node-lease"

// heartbeater keeps a world's Nodes alive as kubelets would: a Lease per
// Node renewed every LeaseRenewInterval, and the Ready condition's
// heartbeat every StatusInterval, so that the node lifecycle controller
// neither marks them unknown nor taints them.
type heartbeater struct {
	cs            kubernetes.Interface
	names         []string
	renew, status time.Duration
	leaseSeconds  int32
	cancel        context.CancelFunc
	done          chan struct{}
	failures      atomic.Int64
}

// startNodes registers the Nodes (in parallel) and starts the heartbeats.
func startNodes(ctx context.Context, cs kubernetes.Interface, cfg Config) (*heartbeater, error) {
	h := &heartbeater{
		cs: cs, renew: cfg.LeaseRenewInterval, status: cfg.StatusInterval,
		leaseSeconds: int32((4 * cfg.LeaseRenewInterval).Round(time.Second) / time.Second),
	}
	if h.leaseSeconds < 1 {
		h.leaseSeconds = 1
	}
	for i := range cfg.Nodes {
		h.names = append(h.names, fmt.Sprintf("%s%d", cfg.NodePrefix, i))
	}
	errs := make([]error, len(h.names))
	var wg sync.WaitGroup
	for i, n := range h.names {
		wg.Go(func() { errs[i] = h.register(ctx, n) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	loop, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go h.run(loop)
	return h, nil
}

// register creates (or refreshes) the Node with a Ready status, removes
// the not-ready taint admission put on it at creation (what the node
// lifecycle controller would do, so that the Nodes are schedulable without
// it), and creates its Lease.
func (h *heartbeater) register(ctx context.Context, name string) error {
	now := metav1.Now()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				SimulatedNodeLabel:        "true",
				corev1.LabelHostname:      name,
				corev1.LabelOSStable:      "linux",
				corev1.LabelArchStable:    "amd64",
				"node.kubernetes.io/role": "simulated",
			},
		},
		Status: nodeStatus(name, now),
	}
	created, err := h.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: "driftlab-world"})
	switch {
	case apierrors.IsAlreadyExists(err):
		// A world restarted against the same apiserver: take the Node over.
		if created, err = h.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		created.Status = nodeStatus(name, now)
		if created, err = h.cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: "driftlab-world"}); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if err := h.untaint(ctx, created); err != nil {
		return fmt.Errorf("node %s: removing the not-ready taint: %w", name, err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: nodeLeaseNamespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: created.UID}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       &name,
			LeaseDurationSeconds: &h.leaseSeconds,
			RenewTime:            &metav1.MicroTime{Time: now.Time},
		},
	}
	_, err = h.cs.CoordinationV1().Leases(nodeLeaseNamespace).Create(ctx, lease, metav1.CreateOptions{FieldManager: "driftlab-world"})
	if apierrors.IsAlreadyExists(err) {
		err = h.renewLease(ctx, name)
	}
	return err
}

func (h *heartbeater) untaint(ctx context.Context, node *corev1.Node) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var kept []corev1.Taint
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = kept
		_, err := h.cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{FieldManager: "driftlab-world"})
		if apierrors.IsConflict(err) {
			fresh, gerr := h.cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			*node = *fresh
		}
		return err
	})
}

// nodeStatus is a Ready Node with room for many Pods.
func nodeStatus(name string, now metav1.Time) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("250"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "driftlab simulated node"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "driftlab simulated node"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "driftlab simulated node"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "driftlab simulated node"),
		},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: "v0.0.0-driftlab", OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "driftlab://simulated",
		},
	}
}

func (h *heartbeater) run(ctx context.Context) {
	defer close(h.done)
	renew := time.NewTicker(h.renew)
	defer renew.Stop()
	status := time.NewTicker(h.status)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			h.each(ctx, h.renewLease)
		case <-status.C:
			h.each(ctx, h.heartbeatStatus)
		}
	}
}

// each calls f for every Node at once; a failed heartbeat is counted and
// retried at the next tick, as a kubelet does.
func (h *heartbeater) each(ctx context.Context, f func(context.Context, string) error) {
	ctx, cancel := context.WithTimeout(ctx, h.renew)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range h.names {
		wg.Go(func() {
			if err := f(ctx, n); err != nil && ctx.Err() == nil {
				h.failures.Add(1)
			}
		})
	}
	wg.Wait()
}

func (h *heartbeater) renewLease(ctx context.Context, name string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{
		"holderIdentity": name, "leaseDurationSeconds": h.leaseSeconds,
		"renewTime": metav1.NowMicro(),
	}})
	if err != nil {
		return err
	}
	_, err = h.cs.CoordinationV1().Leases(nodeLeaseNamespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "driftlab-world"})
	return err
}

// heartbeatStatus refreshes the Ready condition's lastHeartbeatTime
// (conditions merge by type in a strategic merge patch).
func (h *heartbeater) heartbeatStatus(ctx context.Context, name string) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
		"type": corev1.NodeReady, "status": corev1.ConditionTrue, "reason": "KubeletReady",
		"lastHeartbeatTime": metav1.Now(),
	}}}})
	if err != nil {
		return err
	}
	_, err = h.cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "driftlab-world"}, "status")
	return err
}

func (h *heartbeater) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
}

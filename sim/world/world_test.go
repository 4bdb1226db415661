package world_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/driftlab/driftlab/sim/world"
)

func TestConfigErrors(t *testing.T) {
	admin := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, c := range []struct {
		cfg  world.Config
		want string
	}{
		{world.Config{}, "Dir is required"},
		{world.Config{Dir: t.TempDir(), Kubeconfig: "kc"}, "Admin is required"},
		{world.Config{Dir: t.TempDir(), Admin: admin}, "Kubeconfig is required"},
		{world.Config{Dir: t.TempDir(), Admin: admin, Kubeconfig: "kc", Controllers: []string{"none", "deployment"}}, "cannot be combined"},
		{world.Config{Dir: t.TempDir(), Admin: admin, Kubeconfig: "kc", Controllers: []string{}}, "Controllers is empty"},
	} {
		w, err := world.Start(context.Background(), c.cfg)
		if err == nil {
			w.Stop()
			t.Errorf("%+v: Start succeeded", c.cfg)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q, want %q", err, c.want)
		}
	}
}

// TestDeploymentWorld is issue 16's check of the control plane: a
// Deployment gets a ReplicaSet and Pods bound to the simulated Nodes, its
// Pods follow 3 → 5 → 0, it becomes available once a kubelet makes its Pods
// Ready, deleting it garbage-collects its ReplicaSet and Pods, a namespace
// finishes deleting, the Nodes stay Ready and untainted while a Node nobody
// heartbeats is tainted, and Stop leaves no process behind.
func TestDeploymentWorld(t *testing.T) {
	needPlane(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := plane(t, dir)
	cfg := config(env, dir, 3)
	// A short node-monitor grace period shows within the test that the
	// heartbeats are what keeps the Nodes Ready.
	cfg.LeaseRenewInterval = time.Second
	cfg.ControllerManagerArgs = []string{"--node-monitor-period=1s", "--node-monitor-grace-period=5s"}
	// The controller-manager's own kubeconfig (where a fault proxy would go).
	kc, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ControllerManagerKubeconfig = filepath.Join(dir, "controller-manager.kubeconfig")
	if err := os.WriteFile(cfg.ControllerManagerKubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w, err := world.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			w.Stop()
		}
	})
	t.Logf("start-up: controller-manager %s, scheduler %s, nodes %s, total %s",
		w.Startup.ControllerManager, w.Startup.Scheduler, w.Startup.Nodes, w.Startup.Total)
	for _, u := range []string{w.ControllerManagerURL(), w.SchedulerURL()} {
		if !strings.HasPrefix(u, "https://127.0.0.1:") {
			t.Errorf("component serves on %q, want 127.0.0.1", u)
		}
	}
	if len(w.Nodes) != 3 || len(w.PIDs()) != 2 {
		t.Fatalf("nodes %v, pids %v", w.Nodes, w.PIDs())
	}
	for _, pid := range w.PIDs() {
		addrs := listening(t, pid)
		if len(addrs) == 0 {
			t.Errorf("process %d listens on nothing", pid)
		}
		for _, a := range addrs {
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Errorf("process %d listens on %s, want 127.0.0.1 only", pid, a)
			}
		}
	}
	for i, want := range []string{cfg.ControllerManagerKubeconfig, env.Kubeconfig} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", w.PIDs()[i]))
		if err != nil || !strings.Contains(string(b), "--kubeconfig="+want+"\x00") {
			t.Errorf("process %d: %v, not run with --kubeconfig=%s: %q", w.PIDs()[i], err, want, b)
		}
	}
	cs := clientset(t, env)
	unattended := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "unattended"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}}},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, unattended, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startReadyKubelet(t, cs, w.Nodes, 100*time.Millisecond)

	const ns = "shop"
	namespace(t, cs, ns)
	dep, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rs *appsv1.ReplicaSet
	eventually(t, 30*time.Second, "a ReplicaSet owned by the Deployment", func() (bool, string) {
		l, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for i := range l.Items {
			if c := metav1.GetControllerOf(&l.Items[i]); c != nil && c.UID == dep.UID {
				rs = &l.Items[i]
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d ReplicaSets", len(l.Items))
	})
	podsFollow(t, cs, ns, w.Nodes, 3)
	available(t, cs, ns, "web", 3)

	for _, n := range []int32{5, 0, 3} {
		scale(t, cs, ns, "web", n)
		podsFollow(t, cs, ns, w.Nodes, int(n))
		available(t, cs, ns, "web", n)
	}

	// Garbage collection: the ReplicaSet and its Pods go with the Deployment.
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "ReplicaSet garbage-collected", func() (bool, string) {
		_, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	podsFollow(t, cs, ns, w.Nodes, 0)

	// A namespace with a Deployment, its Pods and a ConfigMap finishes deleting.
	const doomed = "doomed"
	namespace(t, cs, doomed)
	d := deployment(doomed, "job", 2)
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptrTo[int64](1)
	if _, err := cs.AppsV1().Deployments(doomed).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(doomed).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podsFollow(t, cs, doomed, w.Nodes, 2)
	if err := cs.CoreV1().Namespaces().Delete(ctx, doomed, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "namespace deleted", func() (bool, string) {
		n, err := cs.CoreV1().Namespaces().Get(ctx, doomed, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("phase %s, conditions %v", n.Status.Phase, n.Status.Conditions)
	})

	// The node lifecycle controller taints a Node nobody heartbeats, and
	// leaves the simulated ones alone.
	eventually(t, time.Until(start.Add(60*time.Second)), "the unattended Node tainted", func() (bool, string) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "unattended", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return hasTaint(n, corev1.TaintNodeUnreachable), fmt.Sprintf("taints %v", n.Spec.Taints)
	})
	for _, name := range w.Nodes {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Spec.Taints) != 0 || !nodeReady(n) {
			t.Errorf("simulated node %s: taints %v, conditions %v", name, n.Spec.Taints, n.Status.Conditions)
		}
	}
	if f := w.HeartbeatFailures(); f != 0 {
		t.Errorf("%d heartbeats failed", f)
	}

	if err := w.Exited(); err != nil {
		t.Errorf("a component exited during the test: %v", err)
	}
	pids := w.PIDs()
	t0 := time.Now()
	if err := w.Stop(); err != nil {
		t.Error(err)
	}
	stopped = true
	t.Logf("stop: %s", time.Since(t0))
	noProcessLeft(t, pids, dir)
	for _, log := range []string{"kube-controller-manager.log", "kube-scheduler.log"} {
		if st, err := os.Stat(filepath.Join(dir, log)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v, empty or missing", log, err)
		}
	}
}

// TestNoControllers: with Controllers None there is no controller-manager
// (a Deployment gets no ReplicaSet) while the scheduler still binds a Pod;
// and a world that fails to start stops what it had started.
func TestNoControllers(t *testing.T) {
	needPlane(t)
	ctx := context.Background()
	dir := t.TempDir()
	env := plane(t, dir)

	bad := config(env, filepath.Join(dir, "bad"), 1)
	bad.SchedulerBinary = "/bin/false"
	if w, err := world.Start(ctx, bad); err == nil {
		w.Stop()
		t.Fatal("Start with a scheduler that exits: no error")
	} else if !strings.Contains(err.Error(), "kube-scheduler exited while starting") {
		t.Errorf("error %q does not say the scheduler exited", err)
	}
	noProcessLeft(t, nil, bad.Dir)

	cfg := config(env, filepath.Join(dir, "none"), 2)
	cfg.NodePrefix = "other-node-"
	cfg.Controllers = world.None
	w, err := world.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if len(w.PIDs()) != 1 || w.ControllerManagerURL() != "" || w.Startup.ControllerManager != 0 {
		t.Fatalf("Controllers None: pids %v, controller-manager at %q", w.PIDs(), w.ControllerManagerURL())
	}
	cs := clientset(t, env)
	const ns = "bare"
	namespace(t, cs, ns)
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "solo"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "driftlab.invalid/app:1"}}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the bare Pod bound to a simulated node", func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "solo", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(w.Nodes, p.Spec.NodeName), "node " + p.Spec.NodeName
	})
	// Bounded wait for what must not happen: with the controllers on, the
	// ReplicaSet appears within tens of milliseconds (TestDeploymentWorld).
	time.Sleep(3 * time.Second)
	l, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Errorf("Controllers None: %d ReplicaSets appeared", len(l.Items))
	}
	// A component that dies during the run is reported, by Exited and Stop.
	pids := w.PIDs()
	if err := w.Exited(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Exited reports the killed scheduler", func() (bool, string) {
		err := w.Exited()
		return err != nil && strings.Contains(err.Error(), "kube-scheduler exited"), fmt.Sprint(err)
	})
	if err := w.Stop(); err == nil || !strings.Contains(err.Error(), "kube-scheduler exited") {
		t.Errorf("Stop after the scheduler died: %v", err)
	}
	noProcessLeft(t, pids, cfg.Dir)
}

// podsFollow waits until the namespace holds exactly n Pods, none being
// deleted, each bound to one of nodes.
func podsFollow(t *testing.T, cs kubernetes.Interface, ns string, nodes []string, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d Pods bound in %s", n, ns), func() (bool, string) {
		l, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var bound []string
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && slices.Contains(nodes, p.Spec.NodeName) {
				bound = append(bound, p.Name+"@"+p.Spec.NodeName)
			}
		}
		return len(l.Items) == n && len(bound) == n, fmt.Sprintf("%d Pods, bound: %v", len(l.Items), bound)
	})
}

func available(t *testing.T, cs kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("Deployment %s available=%d", name, n), func() (bool, string) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		return s.ObservedGeneration == d.Generation && s.Replicas == n && s.AvailableReplicas == n && s.ReadyReplicas == n,
			fmt.Sprintf("%+v", s)
	})
}

func scale(t *testing.T, cs kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := cs.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = n
		_, err = cs.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

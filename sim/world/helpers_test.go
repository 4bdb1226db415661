package world_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/driftlab/driftlab/internal/assets"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/world"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // sim/local installs CRDs with a controller-runtime client
	if os.Getenv(childEnv) != "" {
		childMain()
	}
	os.Exit(m.Run())
}

// needPlane skips with -short and fails when a binary is missing.
func needPlane(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane; skipped with -short")
	}
	for _, n := range assets.Known {
		if _, err := assets.Find(n); err != nil {
			t.Fatal(err)
		}
	}
}

// plane starts etcd + kube-apiserver into dir and stops it at cleanup.
func plane(t testing.TB, dir string) *local.Env {
	t.Helper()
	env, err := local.Start(context.Background(), local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	return env
}

// config is a world on env, logging into dir.
func config(env *local.Env, dir string, nodes int) world.Config {
	return world.Config{Dir: dir, Admin: env.Admin, Kubeconfig: env.Kubeconfig, APIServer: env.APIServer, Nodes: nodes}
}

func clientset(t testing.TB, env *local.Env) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// eventually polls cond every 20ms until it returns true or d passes; the
// string is what to say when it never does.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, d, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noProcessLeft checks that none of pids is alive and that no process's
// command line mentions dir (every component is given files in it).
func noProcessLeft(t testing.TB, pids []int, dir string) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir) {
			t.Errorf("process %d outlived Stop: %s", pid, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "driftlab.invalid/app:1"}}},
			},
		},
	}
}

func namespace(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// readyKubelet is a test-only stand-in for the simulated kubelet: it makes
// every Pod bound to one of the world's Nodes Running and Ready after
// delay, and completes graceful deletions at once.
type readyKubelet struct {
	cs      kubernetes.Interface
	delay   time.Duration
	nodes   map[string]bool
	stop    chan struct{}
	mu      sync.Mutex
	handled map[types.UID]bool
	wg      sync.WaitGroup
	close   func()
}

func startReadyKubelet(t testing.TB, cs kubernetes.Interface, nodes []string, delay time.Duration) *readyKubelet {
	t.Helper()
	k := &readyKubelet{cs: cs, delay: delay, nodes: map[string]bool{}, stop: make(chan struct{}), handled: map[types.UID]bool{}}
	for _, n := range nodes {
		k.nodes[n] = true
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Pods().Informer()
	handle := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok {
			k.handle(p)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(k.stop)
	f.WaitForCacheSync(k.stop)
	var once sync.Once
	k.close = func() {
		once.Do(func() {
			close(k.stop)
			f.Shutdown()
			k.wg.Wait()
		})
	}
	t.Cleanup(k.Close)
	return k
}

// Close stops the helper and waits for what it started.
func (k *readyKubelet) Close() { k.close() }

func (k *readyKubelet) handle(p *corev1.Pod) {
	if !k.nodes[p.Spec.NodeName] {
		return
	}
	ctx := context.Background()
	if p.DeletionTimestamp != nil {
		k.once(p.UID, "delete", func() {
			err := k.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				GracePeriodSeconds: ptrTo[int64](0), Preconditions: &metav1.Preconditions{UID: &p.UID},
			})
			_ = ignoreGone(err)
		})
		return
	}
	if podReady(p) {
		return
	}
	k.once(p.UID, "ready", func() {
		select {
		case <-time.After(k.delay):
		case <-k.stop:
			return
		}
		_ = ignoreGone(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := k.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || cur.UID != p.UID || cur.DeletionTimestamp != nil {
				return err
			}
			now := metav1.Now()
			cur.Status.Phase = corev1.PodRunning
			cur.Status.StartTime = &now
			for _, c := range []corev1.PodConditionType{corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
				setCondition(&cur.Status, c, now)
			}
			cur.Status.ContainerStatuses = nil
			for _, c := range cur.Spec.Containers {
				cur.Status.ContainerStatuses = append(cur.Status.ContainerStatuses, corev1.ContainerStatus{
					Name: c.Name, Image: c.Image, Ready: true, Started: ptrTo(true),
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
				})
			}
			_, err = k.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		}))
	})
}

// once runs f in a goroutine the first time it is asked for (uid, what).
func (k *readyKubelet) once(uid types.UID, what string, f func()) {
	key := types.UID(string(uid) + "/" + what)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.handled[key] {
		return
	}
	k.handled[key] = true
	k.wg.Go(f)
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			st.Conditions[i].Status, st.Conditions[i].LastTransitionTime = corev1.ConditionTrue, now
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }

// listening returns the local addresses ("127.0.0.1:PORT", hex decoded)
// of the TCP sockets pid listens on, from /proc.
func listening(t testing.TB, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] { // 0A: LISTEN
				continue
			}
			addrs = append(addrs, decodeAddr(fs[1]))
		}
	}
	return addrs
}

// decodeAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080"
// (IPv6 addresses stay in hex, which never looks like 127.0.0.1).
func decodeAddr(s string) string {
	host, port, _ := strings.Cut(s, ":")
	p, _ := strconv.ParseUint(port, 16, 16)
	if len(host) != 8 {
		return host + ":" + strconv.FormatUint(p, 10)
	}
	v, _ := strconv.ParseUint(host, 16, 32)
	return fmt.Sprintf("%d.%d.%d.%d:%d", v&0xff, v>>8&0xff, v>>16&0xff, v>>24, p)
}

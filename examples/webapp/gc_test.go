package webapp_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/driftlab/driftlab/lab"

	webappv1 "example.com/webapp/api/v1"
	"example.com/webapp/controller"
)

// The operator leaves clean-up to garbage collection: deleting a WebApp
// must delete its Deployment, the Deployment's ReplicaSet and their Pods.
// The plane's world runs the garbage collector; this test drives the plane
// itself (its own manager, the simulated kubelet for its namespace).
func TestDeletingAWebAppDeletesItsDeploymentReplicaSetAndPods(t *testing.T) {
	plane := lab.Shared(t)
	require.NotEmpty(t, plane.Nodes(), "the plane has no world")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scheme := controller.Scheme()
	c, err := client.New(plane.Config(), client.Options{Scheme: scheme})
	require.NoError(t, err)
	const ns = "gc"
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	plane.Kubelet(t, ns)

	mgr, err := ctrl.NewManager(plane.Config(), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	require.NoError(t, controller.SetupDeployments(mgr))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	app := &webappv1.WebApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: webappv1.WebAppSpec{Replicas: 2, Image: "nginx:1.27"}}
	require.NoError(t, c.Create(ctx, app))
	pods := &corev1.PodList{}
	eventually(t, "the WebApp's 2 Pods Ready", func() bool {
		require.NoError(t, c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{webappv1.LabelApp: "shop"}))
		ready := 0
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.Spec.NodeName != "" {
					ready++
				}
			}
		}
		return ready == 2
	})
	rss := &appsv1.ReplicaSetList{}
	require.NoError(t, c.List(ctx, rss, client.InNamespace(ns)))
	require.Len(t, rss.Items, 1, "one ReplicaSet")

	require.NoError(t, c.Delete(ctx, app))
	eventually(t, "the Deployment, ReplicaSet and Pods gone", func() bool {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &appsv1.Deployment{})
		require.NoError(t, c.List(ctx, rss, client.InNamespace(ns)))
		require.NoError(t, c.List(ctx, pods, client.InNamespace(ns)))
		return apierrors.IsNotFound(err) && len(rss.Items) == 0 && len(pods.Items) == 0
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

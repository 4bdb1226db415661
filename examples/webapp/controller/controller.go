// Package controller is the WebApp operator: for each WebApp it keeps a
// ConfigMap with the greeting and spec.replicas Pods, and reports how many
// of them are Ready.
package controller

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	webappv1 "example.com/webapp/api/v1"
)

// Scheme has the built-in kinds and the WebApp API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := webappv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Reconciler reconciles WebApps.
type Reconciler struct {
	client.Client
	// IgnorePods is the seeded bug: the controller does not watch the
	// Pods it owns, so a Pod becoming Ready does not start a reconcile,
	// and the status says so only when something else changes the WebApp.
	IgnorePods bool
	// Deployments runs each WebApp's Pods through a Deployment it owns
	// instead of creating them itself: the Deployment's status is the
	// WebApp's, and deleting the WebApp is left to garbage collection
	// (it needs a kube-controller-manager: a driftlab world).
	Deployments bool
}

// Setup adds the WebApp controller to mgr: what main does, and what a
// driftlab test hands to lab.Manager.
func Setup(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
}

// SetupBroken is Setup with the seeded bug.
func SetupBroken(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient(), IgnorePods: true}).SetupWithManager(mgr)
}

// SetupDeployments is Setup with the WebApps' Pods run by Deployments.
func SetupDeployments(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient(), Deployments: true}).SetupWithManager(mgr)
}

// SetupWithManager watches WebApps and the Pods (or Deployments) and
// ConfigMaps they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).For(&webappv1.WebApp{}).Owns(&corev1.ConfigMap{})
	switch {
	case r.Deployments:
		b = b.Owns(&appsv1.Deployment{})
	case !r.IgnorePods:
		b = b.Owns(&corev1.Pod{})
	}
	return b.Complete(r)
}

// Reconcile brings one WebApp's ConfigMap and Pods to its spec and writes
// its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var app webappv1.WebApp
	if err := r.Get(ctx, req.NamespacedName, &app); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if err := r.configMap(ctx, &app); err != nil {
		return r.failed(ctx, "config map", err)
	}
	if r.Deployments {
		d, err := r.deployment(ctx, &app)
		if err != nil {
			return r.failed(ctx, "deployment", err)
		}
		return r.writeStatus(ctx, &app, d.Status.AvailableReplicas)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(app.Namespace), client.MatchingLabels{webappv1.LabelApp: app.Name}); err != nil {
		return r.failed(ctx, "listing pods", err)
	}
	have := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && metav1.IsControlledBy(p, &app) {
			have[p.Name] = p
		}
	}
	want := map[string]bool{}
	for i := 0; i < int(app.Spec.Replicas); i++ {
		name := app.Name + "-" + strconv.Itoa(i)
		want[name] = true
		if have[name] == nil {
			if err := r.Create(ctx, r.pod(&app, name)); err != nil && !apierrors.IsAlreadyExists(err) {
				return r.failed(ctx, "creating pod "+name, err)
			}
		}
	}
	names := make([]string, 0, len(have))
	for n := range have {
		names = append(names, n)
	}
	sort.Strings(names)
	available := int32(0)
	for _, n := range names {
		p := have[n]
		if !want[n] {
			if err := r.Delete(ctx, p); err != nil && !apierrors.IsNotFound(err) {
				return r.failed(ctx, "deleting pod "+n, err)
			}
			continue
		}
		if podReady(p) {
			available++
		}
	}
	return r.writeStatus(ctx, &app, available)
}

func (r *Reconciler) configMap(ctx context.Context, app *webappv1.WebApp) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: app.Name + "-config"}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, cm, func() error {
		cm.Data = map[string]string{"greeting": app.Spec.Greeting}
		return controllerutil.SetControllerReference(app, cm, r.Scheme())
	})
	return err
}

func (r *Reconciler) pod(app *webappv1.WebApp, name string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: name, Labels: map[string]string{webappv1.LabelApp: app.Name}},
		Spec: podSpec(app)}
	_ = controllerutil.SetControllerReference(app, p, r.Scheme())
	return p
}

func podSpec(app *webappv1.WebApp) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: app.Spec.Image,
		Env: []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: app.Name + "-config"}, Key: "greeting"}}}}}}}
}

// deployment keeps the WebApp's Deployment at its spec.
func (r *Reconciler) deployment(ctx context.Context, app *webappv1.WebApp) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: app.Name}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, d, func() error {
		labels := map[string]string{webappv1.LabelApp: app.Name}
		replicas := app.Spec.Replicas
		d.Spec.Replicas = &replicas
		if d.Spec.Selector == nil { // immutable once set
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
		}
		d.Spec.Template.Labels = labels
		d.Spec.Template.Spec = podSpec(app)
		return controllerutil.SetControllerReference(app, d, r.Scheme())
	})
	return d, err
}

func (r *Reconciler) writeStatus(ctx context.Context, app *webappv1.WebApp, available int32) (ctrl.Result, error) {
	base := app.DeepCopy()
	app.Status.AvailableReplicas = available
	app.Status.ObservedGeneration = app.Generation
	cond := metav1.Condition{Type: webappv1.ConditionReady, Status: metav1.ConditionFalse, Reason: "Scaling",
		Message: fmt.Sprintf("%d of %d Pods available", available, app.Spec.Replicas), ObservedGeneration: app.Generation}
	if available == app.Spec.Replicas {
		cond.Status, cond.Reason = metav1.ConditionTrue, "Available"
	}
	meta.SetStatusCondition(&app.Status.Conditions, cond)
	// A merge patch of the status alone: what it sets is what this
	// reconcile computed, so it needs no lock against the spec's writers.
	if err := r.Status().Patch(ctx, app, client.MergeFrom(base)); err != nil {
		return r.failed(ctx, "writing status", err)
	}
	return ctrl.Result{}, nil
}

// failed returns err so that controller-runtime retries the reconcile with
// backoff.
func (r *Reconciler) failed(ctx context.Context, what string, err error) (ctrl.Result, error) {
	log.FromContext(ctx).V(1).Info("reconcile failed", "what", what, "error", err.Error())
	return ctrl.Result{}, fmt.Errorf("%s: %w", what, err)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

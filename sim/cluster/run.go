package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/workload"
)

// Options configure a cluster run. The zero value of each field means its
// default.
type Options struct {
	// Dir is the run directory; required.
	Dir string
	// Config reaches the API server; required.
	Config *rest.Config
	// System is the operator under test (its System.Operator nil: it runs
	// in the cluster already); required.
	System *harness.System
	// NoSimulatedKubelet switches off the simulated kubelet: the cluster's
	// own kubelets make the Pods Ready.
	NoSimulatedKubelet bool
	// Chaos are exported Chaos Mesh objects (LoadChaos) created when the
	// workload starts and deleted at the end.
	Chaos []*unstructured.Unstructured
	// Keep leaves the workload's objects and Pods in the cluster.
	Keep bool
	// Progress receives phase lines; nil is quiet.
	Progress io.Writer
	// Settle is how long the harness keeps watching after convergence.
	// Default 1s.
	Settle time.Duration
}

// LoadChaos reads the multi-document YAML of `driftlab chaos export`.
func LoadChaos(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for i, doc := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		m := map[string]any{}
		if err := k8syaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if len(m) == 0 {
			continue // comments only
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d: no kind or metadata.name", path, i)
		}
		out = append(out, u)
	}
	return out, nil
}

// covered returns, per fault index, the chaos objects that inject it.
func covered(objs []*unstructured.Unstructured) (map[int]bool, error) {
	out := map[int]bool{}
	for _, u := range objs {
		v, ok := u.GetAnnotations()[scenarios.FaultsAnnotation]
		if !ok {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("%s %s: annotation %s=%q: %w", u.GetKind(), u.GetName(), scenarios.FaultsAnnotation, v, err)
			}
			out[i] = true
		}
	}
	return out, nil
}

// Run executes a scenario against the cluster and checks its invariants.
// The summary is returned (and written) even when the run fails part-way;
// the error is for failures of the run itself, not of invariants.
func Run(ctx context.Context, s *scenarios.Scenario, o Options) (*report.Summary, error) {
	if o.Dir == "" {
		return nil, errors.New("cluster: Options.Dir is required")
	}
	if o.Config == nil {
		return nil, errors.New("cluster: Options.Config is required")
	}
	return harness.Run(ctx, s, o.System, &Backend{Config: o.Config, NoSimulatedKubelet: o.NoSimulatedKubelet, Chaos: o.Chaos, Keep: o.Keep},
		harness.Options{Dir: o.Dir, Progress: o.Progress, Settle: o.Settle})
}

// Backend is the cluster backend: a cluster someone else runs, reached by
// its kubeconfig; truth from the apiserver's watches; faults injected by
// Chaos Mesh objects exported from the scenario.
type Backend struct {
	Config             *rest.Config
	NoSimulatedKubelet bool
	Chaos              []*unstructured.Unstructured
	Keep               bool
}

// Name is "cluster".
func (*Backend) Name() string { return "cluster" }

// Start checks the connection, installs the system's CRDs when the
// cluster lacks its kind, creates the namespace when missing and refuses
// leftovers of an earlier run.
func (b *Backend) Start(ctx context.Context, env *harness.Env) (*harness.Plane, error) {
	s := env.Scenario
	cover, err := covered(b.Chaos)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(b.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	env.Progress("connecting to %s", cfg.Host)
	pctx, pcancel := context.WithTimeout(ctx, 90*time.Second) // an unreachable server fails, not hangs
	defer pcancel()
	t0 := time.Now()
	crdTime, err := b.prepare(pctx, cfg, env)
	if err != nil {
		return nil, err
	}
	env.Summary.Startup.APIServerMs = report.Ms(time.Since(t0) - crdTime)
	env.Summary.Startup.CRDsMs = report.Ms(crdTime)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(env.Dir, "kubeconfig")
	if err := writeKubeconfig(cfg, kubeconfig); err != nil {
		return nil, err
	}
	// Chaos Mesh injects the faults its objects cover; the harness records
	// their windows, at the scenario's times.
	built, skipped := map[int]faults.Fault{}, map[int]string{}
	for i, f := range s.Faults {
		switch {
		case b.Chaos == nil:
			skipped[i] = "the cluster backend injects no faults itself: export them (driftlab chaos export) and pass the file with --chaos"
		case !cover[i]:
			skipped[i] = "not in the chaos objects (driftlab chaos export lists why it skipped it)"
		case f.AfterOps > 0:
			skipped[i] = "afterOps schedules are not exported"
		default:
			built[i] = &chaosWindow{spec: f}
		}
	}
	var created []*unstructured.Unstructured
	c, err := client.New(cfg, client.Options{Scheme: harness.SchemeOf(env.System)})
	if err != nil {
		return nil, err
	}
	return &harness.Plane{
		Admin: cfg, Kubeconfig: kubeconfig, Faults: built, Skipped: skipped, NoKubelet: b.NoSimulatedKubelet,
		Truth: func(ctx context.Context, commit harness.CommitFunc, record func(history.Record), ready chan<- error) error {
			return watchTruth(ctx, dyn, env, commit, record, ready)
		},
		WorkloadStart: func(ctx context.Context) error {
			for _, u := range b.Chaos {
				obj := u.DeepCopy()
				if err := c.Create(ctx, obj); err != nil {
					return fmt.Errorf("creating %s %s/%s (is Chaos Mesh installed?): %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
				}
				created = append(created, obj)
				env.Record(history.Record{Source: history.SourceHarness, Kind: "chaos-created", Detail: fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())})
			}
			return nil
		},
		Stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var errs []error
			for _, u := range created {
				r := history.Record{Source: history.SourceHarness, Kind: "chaos-deleted", Detail: u.GetKind() + " " + u.GetName()}
				if err := c.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting %s %s: %w", u.GetKind(), u.GetName(), err))
					r.Err = err.Error()
				}
				env.Record(r)
			}
			if !b.Keep {
				errs = append(errs, cleanup(ctx, c, env))
			}
			return errors.Join(errs...)
		},
	}, nil
}

// chaosWindow is a fault Chaos Mesh injects: the harness only records its
// window.
type chaosWindow struct{ spec scenarios.Fault }

func (w *chaosWindow) Spec() scenarios.Fault       { return w.spec }
func (w *chaosWindow) Start(context.Context) error { return nil }
func (w *chaosWindow) Stop(context.Context) error  { return nil }
func (w *chaosWindow) Effect() map[string]float64 {
	return map[string]float64{"injected_by_chaos_mesh": 1}
}

// objectNames lists the objects of the subject kind the workload creates.
func objectNames(ops []workload.Op) []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range ops {
		if op.Kind == workload.OpCreate && !op.OtherKind() && !seen[op.Name] {
			seen[op.Name] = true
			out = append(out, op.Name)
		}
	}
	sort.Strings(out)
	return out
}

// prepare reaches the API server, installs the CRDs when the subject's
// kind is not served (and says how long that took), creates the namespace
// when missing, resolves the subject's resources and refuses leftovers.
func (b *Backend) prepare(ctx context.Context, cfg *rest.Config, env *harness.Env) (crdTime time.Duration, err error) {
	mapper, err := harness.NewMapper(cfg)
	if err != nil {
		return 0, fmt.Errorf("reaching the API server at %s: %w", cfg.Host, err)
	}
	subj := env.Subject
	if _, err := mapper.RESTMapping(subj.GVK.GroupKind(), subj.GVK.Version); err != nil {
		if !meta.IsNoMatchError(err) {
			return 0, fmt.Errorf("reaching the API server at %s: %w", cfg.Host, err)
		}
		if len(env.System.CRDs) == 0 && len(env.System.CRDPaths) == 0 {
			return 0, fmt.Errorf("the cluster does not serve %s and the scenario names no CRD for it (subject.crds)", subj.GVK)
		}
		env.Progress("the cluster has no %s CRD: installing it", subj.GVK.Kind)
		t0 := time.Now()
		if _, err := local.InstallCRDs(cfg, env.System.CRDs, env.System.CRDPaths, 60*time.Second); err != nil {
			return 0, err
		}
		crdTime = time.Since(t0)
		if mapper, err = harness.NewMapper(cfg); err != nil { // fresh discovery
			return 0, err
		}
	}
	if err := subj.Resolve(mapper); err != nil {
		return 0, err
	}
	c, err := client.New(cfg, client.Options{Scheme: harness.SchemeOf(env.System), Mapper: mapper})
	if err != nil {
		return 0, err
	}
	ns := env.Scenario.Workload.Namespace
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if err := c.Create(ctx, nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	names := objectNames(env.Ops)
	for _, name := range names {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(subj.GVK)
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
		if err == nil {
			return 0, fmt.Errorf("%s %s/%s already exists (left by an earlier run?): delete the workload's objects (%s) or set workload.namespace",
				subj.GVK.Kind, ns, name, strings.Join(names, ", "))
		}
		if !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	return crdTime, nil
}

// cleanup deletes the workload's objects and, when the subject selects its
// Pods by a name label, their Pods (owned Pods go with their owner).
func cleanup(ctx context.Context, c client.Client, env *harness.Env) error {
	ns, names, subj := env.Scenario.Workload.Namespace, objectNames(env.Ops), env.Subject
	if len(names) == 0 {
		return nil
	}
	var errs []error
	for _, n := range names {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(subj.GVK)
		u.SetNamespace(ns)
		u.SetName(n)
		if err := c.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if key := subj.NameLabel(); key != "" {
		req, err := labels.NewRequirement(key, selection.In, names)
		if err != nil {
			return err
		}
		if err := c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting the objects' Pods: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaning up: %w", errors.Join(errs...))
	}
	return nil
}

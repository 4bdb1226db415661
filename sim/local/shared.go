package local

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/internal/promread"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/report"
)

// Shared is a local control plane kept across runs: started once (by a
// test binary, say), each run in a namespace of its own, each CRD
// installed once. A run whose faults need a control plane of their own
// (a WAL on a FUSE mount, a proxy between kube-apiserver and etcd, a cap
// on etcd's streams: what must exist before etcd or kube-apiserver start)
// cannot use it: Backend's Start says so with ErrNeedsOwnPlane.
type Shared struct {
	// Env is the running control plane.
	Env *Env

	mu   sync.Mutex
	crds map[string]bool // installed, by name
}

// ErrNeedsOwnPlane is what a shared plane's backend returns for a run
// whose faults must be set up before the control plane starts.
var ErrNeedsOwnPlane = errors.New("the scenario needs a control plane of its own: a world the shared plane lacks, or faults set up before it starts (wal-fsync-delay, network-retransmit on apiserver-etcd or controller-manager-apiserver, watcher-exhaustion's maxConcurrentStreams)")

// StartShared starts a control plane to share.
func StartShared(ctx context.Context, cfg Config) (*Shared, error) {
	env, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &Shared{Env: env, crds: map[string]bool{}}
	for _, c := range env.CRDs {
		p.crds[c.Name] = true
	}
	return p, nil
}

// Stop stops the control plane.
func (p *Shared) Stop() error { return p.Env.Stop() }

// Backend is the backend of one run on the shared plane.
func (p *Shared) Backend() harness.Backend { return &sharedBackend{p: p} }

type sharedBackend struct{ p *Shared }

func (*sharedBackend) Name() string { return "local" }

// NeedsOwnPlane reports whether a plan claimed what must exist before the
// control plane starts.
func NeedsOwnPlane(plan *faults.Plan) bool {
	return plan.WALDir != "" || plan.MaxConcurrentStreams != 0 || plan.Wants(scenarios.LinkAPIServerEtcd) ||
		plan.Wants(scenarios.LinkControllerManagerAPIServer)
}

func (b *sharedBackend) Start(ctx context.Context, env *harness.Env) (_ *harness.Plane, err error) {
	s, lenv := env.Scenario, b.p.Env
	plan := faults.NewPlan(s.Seed)
	plan.OperatorCommands = env.OperatorCommands
	built, skipped, err := faults.Build(s.Faults, plan)
	if err == nil && NeedsOwnPlane(plan) {
		err = ErrNeedsOwnPlane
	}
	if err == nil && s.World != nil && lenv.World == nil {
		err = ErrNeedsOwnPlane // a world is started with its plane
	}
	if err != nil {
		_ = plan.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = plan.Close()
		}
	}()
	plan.EtcdEndpoint = lenv.EtcdURL.String()
	plan.EtcdMetric = promread.Metric // the shared etcd runs in this process too
	t0 := time.Now()
	if err := b.p.install(env.System.CRDs, env.System.CRDPaths); err != nil {
		return nil, err
	}
	env.Summary.Startup.CRDsMs = report.Ms(time.Since(t0))
	if s.World == nil && lenv.World != nil {
		env.Progress("the shared plane's world runs too (kube-controller-manager, kube-scheduler, %d Nodes)", len(lenv.World.Nodes))
	}
	c, err := client.New(lenv.Admin, client.Options{Scheme: harness.SchemeOf(env.System)})
	if err != nil {
		return nil, err
	}
	ns := s.Workload.Namespace
	if err := ensureNamespace(ctx, lenv.Admin, ns); err != nil {
		return nil, err
	}
	plane, err := planeOf(env, lenv, plan, built, skipped, ns)
	if err != nil {
		return nil, err
	}
	plane.Stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// What the run left in its namespace goes (without a garbage
		// collector, the Pods too); the namespace stays, as namespace
		// deletion needs the namespace controller.
		var errs []error
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(env.Subject.GVK)
		if err := c.DeleteAllOf(ctx, u, client.InNamespace(ns)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting the run's %s: %w", env.Subject.GVR.Resource, err))
		}
		if err := c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting the run's Pods: %w", err))
		}
		errs = append(errs, plan.Close())
		return errors.Join(errs...)
	}
	return plane, nil
}

// install installs the CRDs not installed yet (by name; paths are read
// each time, and installing again a CRD already there updates it).
func (p *Shared) install(crds []*apiextensionsv1.CustomResourceDefinition, paths []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var todo []*apiextensionsv1.CustomResourceDefinition
	for _, c := range crds {
		if !p.crds[c.Name] {
			todo = append(todo, c)
		}
	}
	var fresh []string
	for _, path := range paths {
		if !p.crds["path:"+path] {
			fresh = append(fresh, path)
		}
	}
	if len(todo) == 0 && len(fresh) == 0 {
		return nil
	}
	got, err := InstallCRDs(p.Env.Admin, todo, fresh, time.Minute)
	if err != nil {
		return err
	}
	for _, c := range got {
		p.crds[c.Name] = true
		p.Env.CRDs = append(p.Env.CRDs, c)
	}
	for _, path := range fresh {
		p.crds["path:"+path] = true
	}
	return nil
}

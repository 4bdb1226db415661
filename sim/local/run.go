package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/internal/promread"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
)

// RunOptions configure a local run. The zero value of each field means its
// default.
type RunOptions struct {
	// Dir is the run directory; required. It receives summary.json,
	// history.jsonl, latency.hlog, ops.jsonl, scenario.json, the kubeconfig
	// and the logs of etcd, kube-apiserver and the operator.
	Dir string
	// System is the operator under test: the reference operator
	// (operator.System) or one a scenario or a test declares; required.
	System *harness.System
	// KubeAPIServer is the kube-apiserver binary; default FindKubeAPIServer().
	KubeAPIServer string
	// Progress receives a status line every second; nil is quiet.
	Progress io.Writer
	// Settle is how long the harness keeps watching after convergence, to
	// catch a status that drifts again. Default 1s.
	Settle time.Duration
	// AuditLog, when set, makes kube-apiserver write an audit log of the
	// subject's requests (auditimport.Policy, written to audit-policy.yaml
	// in Dir) to this path, relative to Dir unless absolute: what
	// `driftlab import audit` reads.
	AuditLog string
}

// Run executes a scenario on the local backend and checks its invariants.
// The summary is returned (and written) even when the run fails part-way; the
// error is for failures of the run itself, not of invariants.
func Run(ctx context.Context, s *scenarios.Scenario, o RunOptions) (*report.Summary, error) {
	if o.Dir == "" {
		return nil, errors.New("local: RunOptions.Dir is required")
	}
	return harness.Run(ctx, s, o.System, &Backend{KubeAPIServer: o.KubeAPIServer, AuditLog: o.AuditLog},
		harness.Options{Dir: o.Dir, Progress: o.Progress, Settle: o.Settle})
}

// Backend is the local backend: an embedded etcd and an envtest
// kube-apiserver per run, truth from etcd's own watch, and the fault
// mechanisms of package faults.
type Backend struct {
	// KubeAPIServer is the kube-apiserver binary; default FindKubeAPIServer().
	KubeAPIServer string
	// AuditLog: see RunOptions.
	AuditLog string
}

// Name is "local".
func (*Backend) Name() string { return "local" }

// etcdMetrics are the etcd metrics sampled at every fault boundary.
var etcdMetrics = []string{
	"etcd_disk_wal_fsync_duration_seconds",
	"etcd_disk_backend_commit_duration_seconds",
	"etcd_debugging_mvcc_slow_watcher_total",
	"etcd_debugging_mvcc_watcher_total",
	"etcd_debugging_mvcc_watch_stream_total",
	"etcd_debugging_mvcc_pending_events_total",
	"etcd_mvcc_put_total",
}

// Start builds the faults (they claim what they need before the control
// plane starts), then starts etcd and kube-apiserver and installs the
// system's CRDs.
func (b *Backend) Start(ctx context.Context, env *harness.Env) (_ *harness.Plane, err error) {
	s := env.Scenario
	plan := faults.NewPlan(s.Seed)
	plan.OperatorCommands = env.OperatorCommands
	built, skipped, err := faults.Build(s.Faults, plan)
	if err != nil {
		_ = plan.Close()
		return nil, err
	}
	for _, i := range slices.Sorted(maps.Keys(skipped)) {
		env.Progress("fault %d (%s) skipped: %s", i, s.Faults[i].Type, skipped[i])
	}
	var lenv *Env
	defer func() {
		if err != nil {
			if lenv != nil {
				_ = lenv.Stop()
			}
			_ = plan.Close()
		}
	}()
	cfg := Config{Dir: env.Dir, KubeAPIServer: b.KubeAPIServer, WALDir: plan.WALDir, MaxConcurrentStreams: plan.MaxConcurrentStreams,
		CRDs: env.System.CRDs, CRDPaths: env.System.CRDPaths, World: s.World}
	if plan.Wants(scenarios.LinkControllerManagerAPIServer) {
		if s.World == nil {
			err = fmt.Errorf("a network fault on %s needs a world (world:) with a controller-manager", scenarios.LinkControllerManagerAPIServer)
			return nil, err
		}
		cfg.ControllerManagerProxy = func(up string) (string, error) {
			return plan.StartProxy(scenarios.LinkControllerManagerAPIServer, up)
		}
	}
	if b.AuditLog != "" {
		if cfg.AuditPolicyFile, cfg.AuditLogPath, err = auditFiles(env.Dir, b.AuditLog, env.Subject.GVR.GroupResource()); err != nil {
			return nil, err
		}
	}
	if plan.Wants(scenarios.LinkAPIServerEtcd) {
		cfg.EtcdProxy = func(up string) (string, error) { return plan.StartProxy(scenarios.LinkAPIServerEtcd, up) }
	}
	env.Progress("starting etcd and kube-apiserver")
	if lenv, err = Start(ctx, cfg); err != nil {
		return nil, err
	}
	plan.EtcdEndpoint = lenv.EtcdURL.String()
	plan.EtcdMetric = promread.Metric
	sum := env.Summary
	sum.Startup.EtcdMs = report.Ms(lenv.Startup.Etcd)
	sum.Startup.APIServerMs = report.Ms(lenv.Startup.APIServer)
	sum.Startup.CRDsMs = report.Ms(lenv.Startup.CRDs)
	setWorldStartup(sum, lenv)
	env.Progress("control plane up: etcd %s, kube-apiserver %s; while it runs: kubectl --kubeconfig %s get %s -A",
		lenv.Startup.Etcd.Round(time.Millisecond), lenv.Startup.APIServer.Round(time.Millisecond), lenv.Kubeconfig, env.Subject.GVR.Resource)

	if err = ensureNamespace(ctx, lenv.Admin, s.Workload.Namespace); err != nil {
		return nil, err
	}
	plane, err := planeOf(env, lenv, plan, built, skipped, "")
	if err != nil {
		return nil, err
	}
	plane.Stop = func() error {
		err := lenv.Stop()
		return errors.Join(err, plan.Close()) // after etcd: the WAL mount must outlive it
	}
	return plane, nil
}

// ensureNamespace creates the workload's namespace unless it exists: a
// fresh plane has only default, kube-system and kube-public, and without
// it every create of the workload fails.
func ensureNamespace(ctx context.Context, admin *rest.Config, ns string) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return nil
}

// setWorldStartup puts the world's start-up times in the summary.
func setWorldStartup(sum *report.Summary, lenv *Env) {
	if lenv.World == nil {
		return
	}
	w := lenv.Startup.World
	sum.Startup.KubeControllerManagerMs = report.Ms(w.ControllerManager)
	sum.Startup.KubeSchedulerMs = report.Ms(w.Scheduler)
	sum.Startup.NodesMs = report.Ms(w.Nodes)
}

// planeOf is the run's plane on a running control plane: the subject's
// resources resolved, the operator's kubeconfig (through its fault proxy
// when one sits on its path), etcd's metrics and the truth watcher. ns,
// when set, limits the truth to one namespace (a shared plane). The
// caller sets Stop.
func planeOf(env *harness.Env, lenv *Env, plan *faults.Plan, built map[int]faults.Fault, skipped map[int]string, ns string) (*harness.Plane, error) {
	mapper, err := harness.NewMapper(lenv.Admin)
	if err != nil {
		return nil, err
	}
	if err := env.Subject.Resolve(mapper); err != nil {
		return nil, err
	}
	custom := map[schema.GroupResource]bool{}
	for _, c := range lenv.CRDs {
		custom[schema.GroupResource{Group: c.Spec.Group, Resource: c.Spec.Names.Plural}] = true
	}
	opKubeconfig := ""
	if plan.Wants(scenarios.LinkOperatorAPIServer) {
		u, err := url.Parse(lenv.Admin.Host)
		if err != nil {
			return nil, err
		}
		addr, err := plan.StartProxy(scenarios.LinkOperatorAPIServer, u.Host)
		if err != nil {
			return nil, err
		}
		if opKubeconfig, err = kubeconfigVia(lenv.Kubeconfig, addr, filepath.Join(env.Dir, "operator.kubeconfig")); err != nil {
			return nil, err
		}
	}
	sampler, err := newPlaneSampler(lenv.Admin, env.Subject.GVR.GroupResource())
	if err != nil {
		return nil, err
	}
	scheme := harness.SchemeOf(env.System)
	var nodes []string
	if lenv.World != nil {
		nodes = lenv.World.Nodes
	}
	return &harness.Plane{
		Admin: lenv.Admin, Kubeconfig: lenv.Kubeconfig, OperatorKubeconfig: opKubeconfig, Nodes: nodes,
		Faults: built, Skipped: skipped,
		Metrics: func() map[string]float64 { return promread.Snapshot(etcdMetrics...) },
		Sample:  sampler.sample,
		Effects: func(r *report.FaultResult, spec scenarios.Fault, recs []history.Record) {
			if spec.Type == scenarios.FaultFailpoint {
				addFailpointEffect(r, spec, recs)
			}
		},
		OperatorStarted: func(p harness.Process) { plan.Operator = p },
		Truth: func(ctx context.Context, commit harness.CommitFunc, record func(history.Record), ready chan<- error) error {
			ec := lenv.EtcdClient()
			defer ec.Close()
			head, err := ec.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				ready <- fmt.Errorf("reading etcd revision: %w", err)
				return nil
			}
			tw := newTruthWatcher(env.Subject, scheme, custom, commit, record)
			tw.namespace = ns
			return tw.run(ctx, ec, head.Header.Revision, ready)
		},
	}, nil
}

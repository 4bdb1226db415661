package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/internal/promread"
	"github.com/driftlab/driftlab/operator"
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/kubelet"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/workload"
)

// RunOptions configure a local run. The zero value of each field means its
// default.
type RunOptions struct {
	// Dir is the run directory; required. It receives summary.json,
	// history.jsonl, latency.hlog, ops.jsonl, scenario.json, the kubeconfig
	// and the logs of etcd, kube-apiserver and the operator.
	Dir string
	// KubeAPIServer is the kube-apiserver binary; default FindKubeAPIServer().
	KubeAPIServer string
	// OperatorCommand runs the operator; the harness appends its flags.
	// Default: this binary with the "operator" subcommand.
	OperatorCommand []string
	// Progress receives a status line every second; nil is quiet.
	Progress io.Writer
	// Settle is how long the harness keeps watching after convergence, to
	// catch a status that drifts again. Default 1s.
	Settle time.Duration
	// AuditLog, when set, makes kube-apiserver write an audit log of the
	// KVCluster requests (auditimport.AuditPolicy, written to
	// audit-policy.yaml in Dir) to this path, relative to Dir unless
	// absolute: what `driftlab import audit` reads.
	AuditLog string
}

// Run executes a scenario on the local backend and checks its invariants.
// The summary is returned (and written) even when the run fails part-way; the
// error is for failures of the run itself, not of invariants.
func Run(ctx context.Context, s *scenarios.Scenario, o RunOptions) (sum *report.Summary, err error) {
	if o.Dir == "" {
		return nil, errors.New("local: RunOptions.Dir is required")
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	began := time.Now()
	quietLibraryLogs()
	sum = &report.Summary{Scenario: s.Name, File: s.File, Backend: "local", Seed: s.Seed, Dir: o.Dir}
	ops := workload.Generate(s.Workload, s.Seed)
	if err := report.WriteJSONFile(filepath.Join(o.Dir, "scenario.json"), s); err != nil {
		return sum, err
	}
	if err := report.WriteJSONLines(filepath.Join(o.Dir, "ops.jsonl"), ops); err != nil {
		return sum, err
	}

	progress := newProgress(o.Progress)

	// Faults claim what they need before the control plane starts.
	plan := faults.NewPlan(s.Seed)
	built, skipped, err := faults.Build(s.Faults, plan)
	if err != nil {
		_ = plan.Close()
		sum.Error = err.Error()
		_ = sum.WriteJSON(filepath.Join(o.Dir, "summary.json"))
		return sum, err
	}
	for i, reason := range skipped {
		progress.printf("fault %d (%s) skipped: %s", i, s.Faults[i].Type, reason)
	}
	cfg := Config{Dir: o.Dir, KubeAPIServer: o.KubeAPIServer, WALDir: plan.WALDir, MaxConcurrentStreams: plan.MaxConcurrentStreams}
	if o.AuditLog != "" {
		if cfg.AuditPolicyFile, cfg.AuditLogPath, err = auditFiles(o.Dir, o.AuditLog); err != nil {
			_ = plan.Close()
			return sum, err
		}
	}
	if plan.Wants(scenarios.LinkAPIServerEtcd) {
		cfg.EtcdProxy = func(up string) (string, error) { return plan.StartProxy(scenarios.LinkAPIServerEtcd, up) }
	}

	progress.phase("starting etcd and kube-apiserver")
	env, err := Start(ctx, cfg)
	if err != nil {
		_ = plan.Close()
		sum.Error = err.Error()
		_ = sum.WriteJSON(filepath.Join(o.Dir, "summary.json"))
		return sum, err
	}
	plan.EtcdEndpoint = env.EtcdURL.String()
	plan.EtcdMetric = promread.Metric
	sum.Startup.EtcdMs = report.Ms(env.Startup.Etcd)
	sum.Startup.APIServerMs = report.Ms(env.Startup.APIServer)
	sum.Startup.CRDsMs = report.Ms(env.Startup.CRDs)
	progress.printf("control plane up: etcd %s, kube-apiserver %s; while it runs: kubectl --kubeconfig %s get kvclusters -A",
		env.Startup.Etcd.Round(time.Millisecond), env.Startup.APIServer.Round(time.Millisecond), env.Kubeconfig)

	rec, err := history.NewRecorder(filepath.Join(o.Dir, "history.jsonl"), time.Now())
	if err != nil {
		_ = env.Stop()
		return sum, err
	}
	var tmu sync.Mutex
	truth := invariant.NewTruth()
	rec.Subscribe(func(r history.Record) { tmu.Lock(); truth.Apply(r); tmu.Unlock() })

	// Everything below runs under one cancellable context and is torn down in
	// reverse order, whatever happens.
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErrs []error
	var errMu sync.Mutex
	fail := func(e error) {
		if e != nil && !errors.Is(e, context.Canceled) {
			errMu.Lock()
			runErrs = append(runErrs, e)
			errMu.Unlock()
		}
	}
	var op *operatorProc
	var sched *scheduler
	defer func() {
		progress.phase("tearing down")
		if sched != nil {
			sched.stop()
			sched.sample("end")
		}
		if op != nil {
			fail(op.stop(15 * time.Second))
		}
		cancel()
		wg.Wait()
		rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindRunEnd})
		fail(env.Stop())
		fail(plan.Close()) // after etcd: the WAL mount must outlive it
		fail(rec.Close())
		progress.stop()

		records := rec.Records()
		out := invariant.Check(records, s.Invariants)
		sum.Faults = faultResults(s.Faults, skipped, sched, out, records)
		sum.Invariants = append(out.Results, report.FaultsCheck(sum.Faults))
		sum.SetOutcome(out)
		sum.Metrics = keyMetrics(records)
		sum.Counts = report.Counts(records)
		errMu.Lock()
		if len(runErrs) > 0 {
			err = errors.Join(append([]error{err}, runErrs...)...)
		}
		errMu.Unlock()
		if err != nil {
			sum.Error = err.Error()
		}
		sum.Passed = err == nil
		for _, r := range sum.Invariants { // the faults check too: a skipped fault never passes
			sum.Passed = sum.Passed && r.Passed
		}
		sum.DurationMs = report.Ms(time.Since(began))
		fail(report.WriteHlog(filepath.Join(o.Dir, "latency.hlog"), out.Histogram, rec.Start(), time.Now()))
		if werr := sum.WriteJSON(filepath.Join(o.Dir, "summary.json")); werr != nil && err == nil {
			err = werr
		}
	}()

	// Truth: watch the embedded etcd in-process.
	ec := env.EtcdClient()
	defer ec.Close()
	head, err := ec.Get(runCtx, "/registry/", clientv3WithCountOnlyPrefix()...)
	if err != nil {
		return sum, fmt.Errorf("reading etcd revision: %w", err)
	}
	tw := newTruthWatcher(rec.Add)
	watching := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); fail(tw.run(runCtx, ec, head.Header.Revision, watching)) }()
	<-watching

	// Simulated kubelet.
	cs, err := kubernetes.NewForConfig(env.Admin)
	if err != nil {
		return sum, err
	}
	kl := &kubelet.Kubelet{Client: cs, Sampler: kubelet.Sampler{Dist: s.Kubelet.ReadyDelay, Seed: s.Seed}, Record: rec.Add}
	wg.Add(1)
	go func() { defer wg.Done(); fail(kl.Run(runCtx)) }()

	// The operator, in its own process.
	progress.phase("starting the operator")
	metricsPort, err := freePort()
	if err != nil {
		return sum, err
	}
	opKubeconfig := env.Kubeconfig
	if plan.Wants(scenarios.LinkOperatorAPIServer) {
		if opKubeconfig, err = proxiedKubeconfig(plan, env, o.Dir); err != nil {
			return sum, err
		}
	}
	args := []string{"--kubeconfig", opKubeconfig, "--cache", s.Operator.Cache,
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(metricsPort), "--events", "-", "--commands"}
	for _, b := range s.Operator.Bugs {
		args = append(args, "--bug", b)
	}
	t0 := time.Now()
	var opEnv []string
	if n := s.Operator.GOMAXPROCS; n > 0 {
		opEnv = append(opEnv, "GOMAXPROCS="+strconv.Itoa(n))
	}
	op, err = startOperator(o.OperatorCommand, args, opEnv, filepath.Join(o.Dir, "operator.log"), rec)
	if err != nil {
		return sum, err
	}
	if err := op.waitReady(runCtx, 60*time.Second); err != nil {
		return sum, err
	}
	sum.Startup.OperatorMs = report.Ms(time.Since(t0))
	plan.Operator = op
	sched = newScheduler(s.Faults, built, rec, op)

	// The workload.
	c, err := client.New(env.Admin, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return sum, err
	}
	// Warm up the client's discovery and the apiserver's handler for the
	// custom resource, so that the first operation is not late by seconds.
	if err := c.List(runCtx, &kvv1.KVClusterList{}, client.InNamespace(s.Workload.Namespace)); err != nil {
		return sum, fmt.Errorf("listing KVClusters before the workload: %w", err)
	}
	for _, i := range sortedKeys(built) {
		if p, ok := built[i].(faults.Preparer); ok {
			progress.printf("preparing fault %d (%s)", i, s.Faults[i].Type)
			if err := p.Prepare(runCtx); err != nil {
				return sum, fmt.Errorf("preparing faults[%d] (%s): %w", i, s.Faults[i].Type, err)
			}
		}
	}
	progress.phase("workload")
	progress.watch(rec, len(ops), time.Now())
	rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindWorkloadStart, Detail: strconv.Itoa(len(ops)) + " operations"})
	sched.sample("workload-start")
	workloadStart := time.Now()
	sched.start(runCtx, workloadStart)
	werr := workload.Run(runCtx, c, s.Workload.Namespace, ops, workloadStart, func(op workload.Op, err error) {
		defer sched.opDone()
		r := history.Record{Source: history.SourceWorkload, Kind: history.KindOp, Op: op.Kind, Cluster: s.Workload.Namespace + "/" + op.Cluster, Detail: op.String()}
		if op.Kind == workload.OpCreate || op.Kind == workload.OpScale {
			r.Replicas = history.Int32(op.Replicas)
		}
		if err != nil {
			r.Err = err.Error()
		}
		rec.Add(r)
	})
	if werr != nil {
		return sum, fmt.Errorf("workload interrupted: %w", werr)
	}
	rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindWorkloadEnd})
	sched.workloadEnded()

	// Wait for the status of every cluster to match the truth.
	progress.phase("waiting for convergence")
	if err := invariant.WaitConverged(runCtx, func() (bool, string) {
		tmu.Lock()
		defer tmu.Unlock()
		return truth.Converged()
	}, rec.Add, s.Invariants.Drift.ConvergeWithin.Duration, o.Settle); err != nil {
		return sum, err
	}
	return sum, nil
}

func clientv3WithCountOnlyPrefix() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}
}

var quietOnce sync.Once

// quietLibraryLogs routes controller-runtime's harness-side logger to
// nowhere: the harness reports through history and progress, and the
// operator process keeps its own log.
func quietLibraryLogs() {
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
}

// proxiedKubeconfig writes operator.kubeconfig: the admin kubeconfig with
// the server moved to a fault proxy in front of kube-apiserver.
func proxiedKubeconfig(plan *faults.Plan, env *Env, dir string) (string, error) {
	u, err := url.Parse(env.Admin.Host)
	if err != nil {
		return "", err
	}
	addr, err := plan.StartProxy(scenarios.LinkOperatorAPIServer, u.Host)
	if err != nil {
		return "", err
	}
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		return "", err
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(dir, "operator.kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

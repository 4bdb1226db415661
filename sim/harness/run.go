package harness

import (
	"context"

	"errors"
	"fmt"
	"github.com/go-logr/logr"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/kubelet"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/subject"
	"github.com/driftlab/driftlab/sim/workload"
)

// Backend is what differs between the real backends: how the control plane
// comes up (or is reached), where the truth comes from, and which faults
// it can inject. Everything else about a run is Run's.
type Backend interface {
	// Name is the backend's name in results ("local", "cluster").
	Name() string
	// Start brings up, or connects to, the control plane of one run; on
	// error it has released what it took.
	Start(ctx context.Context, env *Env) (*Plane, error)
}

// Env is what a backend starts a run with.
type Env struct {
	Scenario *scenarios.Scenario
	System   *System
	Subject  *subject.Subject
	Ops      []workload.Op
	// Dir is the run directory.
	Dir string
	// Summary is the run's summary: the backend fills in its start-up times.
	Summary *report.Summary
	// Progress prints a progress line (nothing when the run is quiet).
	Progress func(format string, args ...any)
	// OperatorCommands says that the operator takes harness commands
	// (faults inside its process need them).
	OperatorCommands bool
	// Record adds a history record; set once the recorder exists (before
	// Plane.Truth runs), valid until Plane.Stop returns.
	Record func(history.Record)
}

// Plane is a started backend.
type Plane struct {
	// Admin reaches the apiserver as a cluster administrator; Kubeconfig
	// is the same as a file.
	Admin      *rest.Config
	Kubeconfig string
	// OperatorKubeconfig is the operator's kubeconfig (through a fault
	// proxy when one sits on its path); empty means Kubeconfig.
	OperatorKubeconfig string
	// Faults are the faults the backend built, by index; Skipped says why
	// it could not build the others.
	Faults  map[int]faults.Fault
	Skipped map[int]string
	// Metrics reads the backend's metrics at fault boundaries (etcd's);
	// nil reads none.
	Metrics func() map[string]float64
	// Sample reads the control plane's metrics once a second from the
	// workload's start to the teardown (plane-sample records, aggregated
	// per fault window in the summary) in a run with faults; nil samples
	// nothing.
	Sample func(ctx context.Context) map[string]float64
	// Effects adds fault-specific effects read from the history; nil adds
	// none.
	Effects func(r *report.FaultResult, spec scenarios.Fault, recs []history.Record)
	// Truth feeds commits of the subject's watched kinds (by their index
	// in Subject.Watched) to commit until ctx is done, and its own
	// problems (an object it could not decode) to record; it sends nil to
	// ready once it watches, or the error that stopped it.
	Truth func(ctx context.Context, commit CommitFunc, record func(history.Record), ready chan<- error) error
	// OperatorStarted, when set, is told the operator's process once it
	// runs (the local backend's faults send it commands).
	OperatorStarted func(Process)
	// NoKubelet switches the simulated kubelet off (a cluster's kubelets
	// run the Pods).
	NoKubelet bool
	// Nodes are simulated Nodes (a world): the kubelet runs only the Pods
	// bound to them. None: it runs every Pod of the namespace.
	Nodes []string
	// WorkloadStart, when set, runs when the workload starts (the cluster
	// backend creates its chaos objects).
	WorkloadStart func(ctx context.Context) error
	// Stop tears the control plane down (or cleans up what the run
	// created in a cluster); Run calls it once, last.
	Stop func() error
}

// CommitFunc takes one committed change for the truth tracker: w indexes
// Subject.Watched, key is "namespace/name", obj is nil when the object
// was deleted.
type CommitFunc func(w int, key string, obj any, rev int64)

// Options configure a run. The zero value of each field means its default.
type Options struct {
	// Dir is the run directory; required.
	Dir string
	// Progress receives a status line every second; nil is quiet.
	Progress io.Writer
	// Settle is how long the harness keeps watching after convergence.
	// Default 1s.
	Settle time.Duration
	// ReadyTimeout bounds the operator's start (a `go run` compiles
	// first). Default 2m.
	ReadyTimeout time.Duration
	// StopGrace is how long the operator has to stop. Default 15s.
	StopGrace time.Duration
}

// Run executes a scenario against sys on a backend and checks its
// invariants. The summary is returned (and written) even when the run
// fails part-way; the error is for failures of the run itself, not of
// invariants.
func Run(ctx context.Context, s *scenarios.Scenario, sys *System, b Backend, o Options) (sum *report.Summary, err error) {
	if o.Dir == "" {
		return nil, errors.New("harness: Options.Dir is required")
	}
	if sys == nil {
		return nil, errors.New("harness: no System (the operator under test)")
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	if o.StopGrace == 0 {
		o.StopGrace = 15 * time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	began := time.Now()
	quietLibraryLogs()
	subj, err := subject.Compile(sys.Subject)
	if err != nil {
		return nil, err
	}
	sum = &report.Summary{Scenario: s.Name, File: s.File, Backend: b.Name(), Seed: s.Seed, Dir: o.Dir,
		Operator: sys.Name, Subject: subj.GVK.String()}
	writeSummary := func() { _ = sum.WriteJSON(filepath.Join(o.Dir, "summary.json")) }
	target, err := workload.NewTarget(subj)
	if err != nil {
		sum.Error = err.Error()
		writeSummary()
		return sum, err
	}
	ops := workload.Generate(s.Workload, s.Seed, subj.Spec.NamePrefix)
	if err := report.WriteJSONFile(filepath.Join(o.Dir, "scenario.json"), s); err != nil {
		return sum, err
	}
	if err := report.WriteJSONLines(filepath.Join(o.Dir, "ops.jsonl"), ops); err != nil {
		return sum, err
	}
	progress := newProgress(o.Progress)
	progress.printf("testing %s (%s) with %s", subj.GVK.Kind, subj.GVK.GroupVersion(), sys.Name)

	env := &Env{Scenario: s, System: sys, Subject: subj, Ops: ops, Dir: o.Dir, Summary: sum, Progress: progress.printf, OperatorCommands: sys.Commands}
	progress.phase("starting the " + b.Name() + " backend")
	plane, err := b.Start(ctx, env)
	if err != nil {
		sum.Error = err.Error()
		sum.DurationMs = report.Ms(time.Since(began))
		writeSummary()
		return sum, err
	}

	// The recorder exists only once the plane does: a plane that failed to
	// start is released by its backend, a recorder that fails is released
	// here.
	rec, err := history.NewRecorder(filepath.Join(o.Dir, "history.jsonl"), time.Now())
	if err != nil {
		sum.Error = err.Error()
		if serr := plane.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		writeSummary()
		return sum, err
	}
	env.Record = rec.Add
	rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindSubject, Subject: subj.Info(sys.Name)})
	var tmu sync.Mutex
	truth := invariant.NewTruth()
	rec.Subscribe(func(r history.Record) {
		if r.Source == history.SourceTruth || r.Kind == history.KindSubject {
			tmu.Lock()
			truth.Apply(r)
			tmu.Unlock()
		}
	})
	tracker := subject.NewTracker(subj)
	var commitMu sync.Mutex
	var commitBuf []history.Record
	commit := func(w int, key string, obj any, rev int64) {
		commitMu.Lock()
		defer commitMu.Unlock()
		commitBuf = tracker.Commit(commitBuf[:0], w, key, obj, rev)
		now := time.Since(rec.Start())
		for _, r := range commitBuf {
			r.T = now
			rec.Add(r)
		}
	}

	// Everything below runs under one cancellable context and is torn down
	// in reverse order, whatever happens.
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
	var op Process
	var sched *scheduler
	defer func() {
		progress.phase("tearing down")
		if sched != nil {
			sched.stop()
			sched.sample("end")
		}
		if op != nil {
			fail(op.Stop(o.StopGrace))
		}
		cancel()
		wg.Wait()
		rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindRunEnd})
		fail(plane.Stop())
		fail(rec.Close())
		progress.stop()

		records := rec.Records()
		fail(creates(records))
		out := invariant.Check(records, s.Invariants)
		sum.Faults = faultResults(s.Faults, plane.Skipped, sched, out, records, plane.Effects)
		sum.Invariants = append(out.Results, report.FaultsCheck(sum.Faults))
		sum.SetOutcome(out)
		sum.Metrics = keyMetrics(records)
		report.SetPlane(sum, records)
		sum.Counts = report.Counts(records)
		if n := tracker.Errors(); n > 0 {
			fail(fmt.Errorf("%d truth evaluations failed (the first are truth-error records in history.jsonl)", n))
		}
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

	// Truth.
	ready := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); fail(plane.Truth(runCtx, commit, rec.Add, ready)) }()
	select {
	case err := <-ready:
		if err != nil {
			return sum, err
		}
	case <-runCtx.Done():
		return sum, runCtx.Err()
	}

	// The simulated kubelet.
	cs, err := kubernetes.NewForConfig(plane.Admin)
	if err != nil {
		return sum, err
	}
	if !plane.NoKubelet {
		kl := &kubelet.Kubelet{Client: cs, Sampler: kubelet.Sampler{Dist: s.Kubelet.ReadyDelay, Seed: s.Seed}, Record: rec.Add,
			Namespace: s.Workload.Namespace, LabelKeys: subj.PodLabelKeys(), Nodes: plane.Nodes}
		wg.Add(1)
		go func() { defer wg.Done(); fail(kl.Run(runCtx)) }()
	}

	// The operator.
	if sys.Operator != nil {
		progress.phase("starting the operator (" + sys.Name + ")")
		t0 := time.Now()
		oenv, err := operatorEnv(plane, s, o.Dir, rec.Add)
		if err != nil {
			return sum, err
		}
		if op, err = sys.Operator.Start(runCtx, oenv); err != nil {
			return sum, err
		}
		if plane.OperatorStarted != nil {
			plane.OperatorStarted(op)
		}
		if err := op.Ready(runCtx, o.ReadyTimeout); err != nil {
			return sum, err
		}
		sum.Startup.OperatorMs = report.Ms(time.Since(t0))
	} else {
		progress.printf("the operator runs elsewhere: what it writes is read from the apiserver")
	}
	var send func(any) error
	if op != nil && sys.Commands {
		send = op.Send
	}
	sched = newScheduler(s.Faults, plane.Faults, rec, plane.Metrics, send)

	// The workload's client. Listing the subject kind first warms up
	// discovery and the apiserver's handler for it, so that the first
	// operation is not late by seconds.
	scheme := sys.Scheme
	if scheme == nil {
		scheme = clientgoscheme.Scheme
	}
	c, err := client.New(plane.Admin, client.Options{Scheme: scheme})
	if err != nil {
		return sum, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(subj.GVK.GroupVersion().WithKind(subj.GVK.Kind + "List"))
	if err := c.List(runCtx, list, client.InNamespace(s.Workload.Namespace)); err != nil {
		return sum, fmt.Errorf("listing %s before the workload (is its CRD installed?): %w", subj.GVR.Resource, err)
	}
	for _, i := range slices.Sorted(maps.Keys(plane.Faults)) {
		if p, ok := plane.Faults[i].(faults.Preparer); ok {
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
	if plane.WorkloadStart != nil {
		if err := plane.WorkloadStart(runCtx); err != nil {
			return sum, err
		}
	}
	// Only a run with faults has windows to set the samples against; a
	// scrape of kube-apiserver's /metrics costs it tens of milliseconds.
	if plane.Sample != nil && len(plane.Faults) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); samplePlane(runCtx, plane.Sample, rec.Add) }()
	}
	workloadStart := time.Now()
	sched.start(runCtx, workloadStart)
	ns := s.Workload.Namespace
	werr := workload.Run(runCtx, c, target, ns, ops, workloadStart, s.Workload.Duration.Duration, func(op workload.Op, err error) {
		defer sched.opDone()
		rec.Add(OpRecord(ns, op, err))
	})
	if werr != nil {
		return sum, fmt.Errorf("workload interrupted: %w", werr)
	}
	rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindWorkloadEnd})
	sched.workloadEnded()

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

var quietOnce sync.Once

// quietLibraryLogs routes controller-runtime's process-wide logger to
// nowhere: the harness reports through history and progress, and an
// operator run in this process gets a logger of its own (Setup).
func quietLibraryLogs() {
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
}

// creates is an error when the workload created objects and not one of
// those creates succeeded: the run then measured nothing (its namespace
// missing, its CRD not served, its template refused), and its invariants
// must not be read as a verdict on the operator.
func creates(records []history.Record) error {
	var n int
	var first string
	for _, r := range records {
		if r.Kind != history.KindOp || r.Op != workload.OpCreate || r.Resource != "" {
			continue
		}
		if r.Err == "" {
			return nil
		}
		if n++; first == "" {
			first = r.Object + ": " + r.Err
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("none of the workload's %d creates succeeded (the first: %s)", n, first)
}

// OpRecord is the history record of one workload operation.
func OpRecord(ns string, op workload.Op, err error) history.Record {
	r := history.Record{Source: history.SourceWorkload, Kind: history.KindOp, Op: op.Kind, Object: ns + "/" + op.Name, Detail: op.String()}
	if op.OtherKind() {
		r.Resource = op.APIVersion + "/" + op.ObjectKind
	} else if op.Kind == workload.OpCreate || op.Kind == workload.OpScale {
		r.Replicas = history.Int32(op.Replicas)
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// operatorEnv is what the operator is started with: its kubeconfig, two
// free loopback addresses, the run directory.
func operatorEnv(plane *Plane, s *scenarios.Scenario, dir string, record func(history.Record)) (OperatorEnv, error) {
	kc := plane.OperatorKubeconfig
	if kc == "" {
		kc = plane.Kubeconfig
	}
	// Absolute: the operator may run in a directory of its own.
	if abs, err := filepath.Abs(kc); err == nil {
		kc = abs
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return OperatorEnv{}, fmt.Errorf("loading the operator's kubeconfig %s: %w", kc, err)
	}
	// What controller-runtime's GetConfig gives an operator's main
	// function: client-go's own default (5 requests a second) would
	// throttle an in-process operator that the same code run as a
	// process would not be.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 20, 30
	}
	metrics, err := FreeAddr()
	if err != nil {
		return OperatorEnv{}, err
	}
	probe, err := FreeAddr()
	if err != nil {
		return OperatorEnv{}, err
	}
	return OperatorEnv{Kubeconfig: kc, Config: cfg, Namespace: s.Workload.Namespace, Dir: dir, MetricsAddr: metrics, ProbeAddr: probe, Record: record}, nil
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// NewMapper is a REST mapper that asks cfg's API server (discovery), and
// asks again for a kind it did not know (a CRD installed since).
func NewMapper(cfg *rest.Config) (meta.RESTMapper, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return apiutil.NewDynamicRESTMapper(cfg, hc)
}

// SchemeOf is sys's scheme, or client-go's.
func SchemeOf(sys *System) *runtime.Scheme {
	if sys.Scheme != nil {
		return sys.Scheme
	}
	return clientgoscheme.Scheme
}

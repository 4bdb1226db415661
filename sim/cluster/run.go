package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/driftlab/driftlab/chaos"
	"github.com/driftlab/driftlab/operator"
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/config/crd"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/kubelet"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/workload"
)

// OperatorFunc runs an operator against cfg until ctx is done, writing its
// history records as JSON lines to events and its logs to log (see
// operator.Options).
type OperatorFunc func(ctx context.Context, cfg *rest.Config, events, log io.Writer) error

// InProcessOperator runs the reference operator in this process with the
// scenario's cache variant and seeded bugs (not its GOMAXPROCS). A process
// can run it once: controller-runtime refuses a second controller of the
// same name; ProcessOperator has no such limit.
func InProcessOperator(s *scenarios.Scenario) OperatorFunc {
	return func(ctx context.Context, cfg *rest.Config, events, log io.Writer) error {
		return operator.Run(ctx, cfg, operator.Options{Cache: s.Operator.Cache, Bugs: s.Operator.Bugs, Events: events, Log: log})
	}
}

// Options configure a cluster run. The zero value of each field means its
// default.
type Options struct {
	// Dir is the run directory; required.
	Dir string
	// Config reaches the API server; when nil, Kubeconfig is loaded.
	Config *rest.Config
	// Kubeconfig is the kubeconfig file (when Config is nil); empty means
	// the usual rules ($KUBECONFIG, ~/.kube/config, in-cluster).
	Kubeconfig string
	// NoSimulatedKubelet switches off the simulated kubelet: the cluster's
	// own kubelets make member Pods Ready.
	NoSimulatedKubelet bool
	// Operator, when set, runs the operator (InProcessOperator for the
	// reference one); nil means it runs elsewhere, in the cluster.
	Operator OperatorFunc
	// Chaos are exported Chaos Mesh objects (LoadChaos) created when the
	// workload starts and deleted at the end.
	Chaos []*unstructured.Unstructured
	// Keep leaves the workload's KVClusters and Pods in the cluster.
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
		v, ok := u.GetAnnotations()[chaos.FaultsAnnotation]
		if !ok {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("%s %s: annotation %s=%q: %w", u.GetKind(), u.GetName(), chaos.FaultsAnnotation, v, err)
			}
			out[i] = true
		}
	}
	return out, nil
}

type runner struct {
	s       *scenarios.Scenario
	o       Options
	cfg     *rest.Config
	c       client.WithWatch
	cs      kubernetes.Interface
	rec     *history.Recorder
	out     io.Writer
	created []*unstructured.Unstructured // chaos objects created
}

func (r *runner) phase(format string, args ...any) {
	if r.out != nil {
		fmt.Fprintf(r.out, "[%6.1fs] %s\n", time.Since(r.rec.Start()).Seconds(), fmt.Sprintf(format, args...))
	}
}

// Run executes a scenario against the cluster and checks its invariants.
// The summary is returned (and written) even when the run fails part-way;
// the error is for failures of the run itself, not of invariants.
func Run(ctx context.Context, s *scenarios.Scenario, o Options) (sum *report.Summary, err error) {
	if o.Dir == "" {
		return nil, errors.New("cluster: Options.Dir is required")
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	began := time.Now()
	sum = &report.Summary{Scenario: s.Name, File: s.File, Backend: "cluster", Seed: s.Seed, Dir: o.Dir}
	fail := func(err error) (*report.Summary, error) {
		sum.Error = err.Error()
		sum.DurationMs = report.Ms(time.Since(began))
		_ = sum.WriteJSON(filepath.Join(o.Dir, "summary.json"))
		return sum, err
	}
	ops := workload.Generate(s.Workload, s.Seed)
	if err := report.WriteJSONFile(filepath.Join(o.Dir, "scenario.json"), s); err != nil {
		return fail(err)
	}
	if err := report.WriteJSONLines(filepath.Join(o.Dir, "ops.jsonl"), ops); err != nil {
		return fail(err)
	}
	cover, err := covered(o.Chaos)
	if err != nil {
		return fail(err)
	}
	cfg := o.Config
	if cfg == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = o.Kubeconfig
		if cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig(); err != nil {
			return fail(fmt.Errorf("loading kubeconfig %q: %w", o.Kubeconfig, err))
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	r := &runner{s: s, o: o, cfg: cfg, out: o.Progress}
	if r.c, err = client.NewWithWatch(cfg, client.Options{Scheme: operator.Scheme()}); err != nil {
		return fail(err)
	}
	if r.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return fail(err)
	}
	r.rec, err = history.NewRecorder(filepath.Join(o.Dir, "history.jsonl"), time.Now())
	if err != nil {
		return fail(err)
	}
	var tmu sync.Mutex
	truth := invariant.NewTruth()
	r.rec.Subscribe(func(rc history.Record) { tmu.Lock(); truth.Apply(rc); tmu.Unlock() })

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErrs []error
	var errMu sync.Mutex
	addErr := func(e error) {
		if e != nil && !errors.Is(e, context.Canceled) {
			errMu.Lock()
			runErrs = append(runErrs, e)
			errMu.Unlock()
		}
	}
	var opCancel context.CancelFunc
	var opLog *os.File
	opDone := make(chan error, 1)
	var windows *windowScheduler
	prepared := false // the workload's namespace is ours to clean up
	defer func() {
		r.phase("tearing down")
		if windows != nil {
			windows.stop()
		}
		r.deleteChaos()
		if opCancel != nil {
			opCancel()
			select {
			case e := <-opDone:
				addErr(e)
			case <-time.After(15 * time.Second):
				addErr(errors.New("operator did not stop within 15s"))
			}
		}
		if opLog != nil {
			_ = opLog.Close()
		}
		cancel()
		wg.Wait()
		r.rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindRunEnd})
		if !o.Keep && prepared {
			addErr(r.cleanup(ops))
		}
		addErr(r.rec.Close())

		records := r.rec.Records()
		out := invariant.Check(records, s.Invariants)
		sum.Faults = faultResults(s, o.Chaos != nil, cover, out)
		sum.Invariants = append(out.Results, report.FaultsCheck(sum.Faults))
		sum.SetOutcome(out)
		sum.Counts = report.Counts(records)
		errMu.Lock()
		if len(runErrs) > 0 {
			err = errors.Join(append([]error{err}, runErrs...)...)
		}
		errMu.Unlock()
		if err != nil {
			sum.Error = err.Error()
		}
		sum.Passed = err == nil && out.Passed()
		sum.DurationMs = report.Ms(time.Since(began))
		addErr(report.WriteHlog(filepath.Join(o.Dir, "latency.hlog"), out.Histogram, r.rec.Start(), time.Now()))
		if werr := sum.WriteJSON(filepath.Join(o.Dir, "summary.json")); werr != nil && err == nil {
			err = werr
		}
	}()

	r.phase("connecting to %s", cfg.Host)
	t0 := time.Now()
	pctx, pcancel := context.WithTimeout(runCtx, 90*time.Second) // an unreachable server fails, not hangs
	crdTime, err := r.prepare(pctx, ops)
	pcancel()
	if err != nil {
		return sum, err
	}
	prepared = true
	sum.Startup.APIServerMs = report.Ms(time.Since(t0) - crdTime)
	sum.Startup.CRDsMs = report.Ms(crdTime)

	// Truth: apiserver watches of member Pods and KVClusters.
	tw := &truthWatcher{c: r.c, cs: r.cs, ns: s.Workload.Namespace, rec: r.rec.Add, derive: o.Operator == nil}
	ready := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); addErr(tw.run(runCtx, ready)) }()
	if err := <-ready; err != nil {
		return sum, err
	}

	if !o.NoSimulatedKubelet {
		kl := &kubelet.Kubelet{Client: r.cs, Sampler: kubelet.Sampler{Dist: s.Kubelet.ReadyDelay, Seed: s.Seed}, Record: r.rec.Add}
		wg.Add(1)
		go func() { defer wg.Done(); addErr(kl.Run(runCtx)) }()
	}

	if o.Operator != nil {
		r.phase("starting the operator")
		t1 := time.Now()
		logf, err := os.Create(filepath.Join(o.Dir, "operator.log"))
		if err != nil {
			return sum, err
		}
		opLog = logf
		readyCh := make(chan struct{})
		events := newRecordWriter(r.rec.Add, func(rc history.Record) {
			if rc.Kind == history.KindOperatorReady {
				select {
				case <-readyCh:
				default:
					close(readyCh)
				}
			}
		})
		octx, ocancel := context.WithCancel(context.Background())
		opCancel = ocancel
		go func() { opDone <- o.Operator(octx, cfg, events, logf) }()
		select {
		case <-readyCh:
		case e := <-opDone:
			ocancel()
			opCancel = nil
			return sum, fmt.Errorf("operator exited before it was ready: %v (see %s)", e, logf.Name())
		case <-time.After(60 * time.Second):
			return sum, fmt.Errorf("operator not ready after 60s (see %s)", logf.Name())
		case <-runCtx.Done():
			return sum, runCtx.Err()
		}
		sum.Startup.OperatorMs = report.Ms(time.Since(t1))
	} else {
		r.phase("the operator runs in the cluster; its status writes are taken from the apiserver watch")
	}

	// The workload, and the chaos with it.
	ns := s.Workload.Namespace
	if err := r.c.List(runCtx, &kvv1.KVClusterList{}, client.InNamespace(ns)); err != nil {
		return sum, fmt.Errorf("listing KVClusters before the workload: %w", err)
	}
	r.phase("workload: %d operations", len(ops))
	r.rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindWorkloadStart, Detail: strconv.Itoa(len(ops)) + " operations"})
	start := time.Now()
	if len(o.Chaos) > 0 {
		if err := r.createChaos(runCtx); err != nil {
			return sum, err
		}
		windows = startWindows(runCtx, s, cover, start, r.rec.Add)
	}
	werr := workload.Run(runCtx, r.c, ns, ops, start, func(op workload.Op, err error) {
		rc := history.Record{Source: history.SourceWorkload, Kind: history.KindOp, Op: op.Kind, Cluster: ns + "/" + op.Cluster, Detail: op.String()}
		if op.Kind == workload.OpCreate || op.Kind == workload.OpScale {
			rc.Replicas = history.Int32(op.Replicas)
		}
		if err != nil {
			rc.Err = err.Error()
		}
		r.rec.Add(rc)
	})
	if werr != nil {
		return sum, fmt.Errorf("workload interrupted: %w", werr)
	}
	r.rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindWorkloadEnd})
	if windows != nil {
		windows.workloadEnded()
	}

	r.phase("waiting for convergence")
	if err := invariant.WaitConverged(runCtx, func() (bool, string) {
		tmu.Lock()
		defer tmu.Unlock()
		return truth.Converged()
	}, r.rec.Add, s.Invariants.Drift.ConvergeWithin.Duration, o.Settle); err != nil {
		return sum, err
	}
	return sum, nil
}

// clusterNames lists the KVClusters the workload creates.
func clusterNames(ops []workload.Op) []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range ops {
		if op.Kind == workload.OpCreate && !seen[op.Cluster] {
			seen[op.Cluster] = true
			out = append(out, op.Cluster)
		}
	}
	sort.Strings(out)
	return out
}

// prepare checks the connection, installs the CRD when missing (and says
// how long that took), creates the namespace when missing, and refuses
// leftovers of an earlier run.
func (r *runner) prepare(ctx context.Context, ops []workload.Op) (crdTime time.Duration, err error) {
	ns := r.s.Workload.Namespace
	err = r.c.List(ctx, &kvv1.KVClusterList{}, client.InNamespace(ns), client.Limit(1))
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		r.phase("the cluster has no KVCluster CRD: installing it")
		t0 := time.Now()
		crds, lerr := crd.Load()
		if lerr != nil {
			return 0, lerr
		}
		if _, err = envtest.InstallCRDs(r.cfg, envtest.CRDInstallOptions{CRDs: crds, MaxTime: 60 * time.Second}); err != nil {
			return 0, fmt.Errorf("installing the KVCluster CRD: %w", err)
		}
		r.c, err = client.NewWithWatch(r.cfg, client.Options{Scheme: operator.Scheme()}) // fresh discovery
		if err != nil {
			return 0, err
		}
		crdTime = time.Since(t0)
	} else if err != nil {
		return 0, fmt.Errorf("reaching the API server at %s: %w", r.cfg.Host, err)
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if err := r.c.Create(ctx, nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	for _, name := range clusterNames(ops) {
		err := r.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &kvv1.KVCluster{})
		if err == nil {
			return 0, fmt.Errorf("KVCluster %s/%s already exists (left by an earlier run?): delete the workload's KVClusters (%s) or set workload.namespace",
				ns, name, strings.Join(clusterNames(ops), ", "))
		}
		if !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	return crdTime, nil
}

// cleanup deletes the workload's KVClusters and their member Pods.
func (r *runner) cleanup(ops []workload.Op) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, names := r.s.Workload.Namespace, clusterNames(ops)
	if len(names) == 0 {
		return nil
	}
	var errs []error
	for _, n := range names {
		kv := &kvv1.KVCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}
		if err := r.c.Delete(ctx, kv); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	req, err := labels.NewRequirement(kvv1.LabelCluster, selection.In, names)
	if err != nil {
		return err
	}
	if err := r.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("deleting member Pods: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaning up: %w", errors.Join(errs...))
	}
	return nil
}

func (r *runner) createChaos(ctx context.Context) error {
	for _, u := range r.o.Chaos {
		obj := u.DeepCopy()
		if err := r.c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s %s/%s (is Chaos Mesh installed?): %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		r.created = append(r.created, obj)
		r.rec.Add(history.Record{Source: history.SourceHarness, Kind: "chaos-created", Detail: fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())})
	}
	return nil
}

func (r *runner) deleteChaos() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range r.created {
		err := r.c.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			r.rec.Add(history.Record{Source: history.SourceHarness, Kind: "chaos-deleted", Detail: u.GetKind() + " " + u.GetName(), Err: err.Error()})
			continue
		}
		r.rec.Add(history.Record{Source: history.SourceHarness, Kind: "chaos-deleted", Detail: u.GetKind() + " " + u.GetName()})
	}
	r.created = nil
}

// recordWriter turns the JSON lines of a history.Emitter into records.
type recordWriter struct {
	mu   sync.Mutex
	buf  []byte
	add  func(history.Record)
	seen func(history.Record)
}

func newRecordWriter(add, seen func(history.Record)) *recordWriter {
	return &recordWriter{add: add, seen: seen}
}

// Write adds every complete JSON line of p as a record.
func (w *recordWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.buf[:i]
		var rc history.Record
		if err := json.Unmarshal(line, &rc); err == nil && rc.Kind != "" {
			w.add(rc)
			w.seen(rc)
		}
		w.buf = w.buf[i+1:]
	}
}

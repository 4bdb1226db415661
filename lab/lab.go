package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/driftlab/driftlab/internal/assets"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/htmlreport"
	"github.com/driftlab/driftlab/sim/kubelet"
	"github.com/driftlab/driftlab/sim/local"
)

// Options configure a control plane.
type Options struct {
	// Dir receives the plane's logs and, under runs/, each run's bundle.
	// Default: $DRIFTLAB_TEST_ARTIFACTS when set, else a temporary
	// directory that Stop removes unless a run failed (the bundles of
	// failed runs, with report.html, stay for you to read).
	Dir string
	// KeepRuns keeps every run's bundle, not only those of failed runs.
	KeepRuns bool
	// CRDs and CRDPaths are installed when the plane starts; a System's
	// own are installed when a run first needs them.
	CRDs     []*apiextensionsv1.CustomResourceDefinition
	CRDPaths []string
	// KubeAPIServer is the kube-apiserver binary; default: found as
	// `driftlab assets` builds it ($KUBEBUILDER_ASSETS, bin/k8s/*/ up from
	// the working directory, the per-user cache).
	KubeAPIServer string
	// World, when set, starts kube-controller-manager, kube-scheduler and
	// simulated Nodes with the plane, for every run on it (Deployments
	// get Pods, owned objects are garbage collected). A scenario that asks
	// for a world on a plane without one gets a plane of its own.
	World *scenarios.World
}

// Plane is a local control plane (an embedded etcd and a kube-apiserver
// on 127.0.0.1) that many scenarios run against, each in a namespace of
// its own: start it once per test binary (Main, or Start in TestMain).
type Plane struct {
	shared  *local.Shared
	dir     string
	tempDir bool
	keep    bool
	apisrv  string
	runs    atomic.Int64
	failed  atomic.Int64
	stopped atomic.Bool
}

// Start starts a control plane.
func Start(ctx context.Context, o Options) (*Plane, error) {
	dir, temp := o.Dir, false
	if dir == "" {
		if d := os.Getenv("DRIFTLAB_TEST_ARTIFACTS"); d != "" {
			dir = d
		} else {
			d, err := os.MkdirTemp("", "driftlab-lab-")
			if err != nil {
				return nil, err
			}
			dir, temp = d, true
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	apisrv := o.KubeAPIServer
	if apisrv == "" {
		var err error
		if apisrv, err = assets.Find("kube-apiserver"); err != nil {
			return nil, fmt.Errorf("lab: %w (build it with `go run github.com/driftlab/driftlab/cmd/driftlab assets`)", err)
		}
	}
	if o.World != nil && o.World.Nodes == 0 {
		w := *o.World
		w.Nodes = 3
		o.World = &w
	}
	sh, err := local.StartShared(ctx, local.Config{Dir: filepath.Join(dir, "plane"), KubeAPIServer: apisrv, CRDs: o.CRDs, CRDPaths: o.CRDPaths, World: o.World})
	if err != nil {
		return nil, fmt.Errorf("lab: starting the control plane: %w", err)
	}
	// Runs are kept where the caller chose the directory; in a temporary
	// one only failed runs are, until Stop.
	return &Plane{shared: sh, dir: dir, tempDir: temp, keep: o.KeepRuns || !temp, apisrv: apisrv}, nil
}

// Stop stops the plane.
func (p *Plane) Stop() error {
	if p == nil || !p.stopped.CompareAndSwap(false, true) {
		return nil
	}
	err := p.shared.Stop()
	switch {
	case p.tempDir && p.failed.Load() == 0:
		err = errors.Join(err, os.RemoveAll(p.dir))
	case p.tempDir:
		fmt.Fprintf(os.Stderr, "lab: %d failed runs: their bundles and reports are kept under %s\n", p.failed.Load(), filepath.Join(p.dir, "runs"))
	}
	return err
}

// Config reaches the plane's apiserver as a cluster administrator.
func (p *Plane) Config() *rest.Config { return rest.CopyConfig(p.shared.Env.Admin) }

// Kubeconfig is the path of the plane's admin kubeconfig.
func (p *Plane) Kubeconfig() string { return p.shared.Env.Kubeconfig }

// Dir is where the plane keeps its logs and the runs' bundles.
func (p *Plane) Dir() string { return p.dir }

// Nodes are the plane's simulated Nodes (a plane started with a World).
func (p *Plane) Nodes() []string {
	if w := p.shared.Env.World; w != nil {
		return w.Nodes
	}
	return nil
}

// Kubelet runs the simulated kubelet for a namespace of the plane until
// the test ends, for a test that drives the plane itself rather than
// through Run: Pods bound to the plane's Nodes (or, without a world, all
// of them) become Ready after the scenario's default delay, graceful
// deletions finish.
func (p *Plane) Kubelet(t testing.TB, namespace string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(p.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &kubelet.Kubelet{Client: cs, Namespace: namespace, Nodes: p.Nodes(),
		Sampler: kubelet.Sampler{Dist: scenarios.Distribution{Distribution: "uniform", Min: scenarios.Duration{Duration: 100 * time.Millisecond}, Max: scenarios.Duration{Duration: 500 * time.Millisecond}}, Seed: 1}}
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("lab: the kubelet: %v", err)
		}
	})
}

var (
	sharedMu  sync.Mutex
	shared    *Plane
	sharedErr error
	mainOpts  *Options // set by Main: the plane outlives the tests
)

// Main runs a test binary's tests with one shared plane (the one Shared
// returns), started when a test first asks for it and stopped after the
// last test, and serves the child processes Child starts. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { lab.Main(m, lab.Options{}) }
func Main(m *testing.M, o Options) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(runChild(name))
	}
	sharedMu.Lock()
	mainOpts = &o
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	p := shared
	sharedMu.Unlock()
	if err := p.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "lab: stopping the control plane: %v\n", err)
	}
	os.Exit(code)
}

// Shared is the test binary's shared plane, started on first use. Under
// Main it lives until the tests are over; without Main it is stopped when
// the test that started it ends, and a later test gets a new one.
func Shared(t testing.TB) *Plane {
	t.Helper()
	if testing.Short() {
		t.Skip("lab: starts a control plane; skipped with -short")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil || (mainOpts == nil && shared.stopped.Load()) {
		o := Options{}
		if mainOpts != nil {
			o = *mainOpts
		}
		shared, sharedErr = Start(context.Background(), o)
		if sharedErr == nil && mainOpts == nil {
			p := shared
			t.Cleanup(func() { _ = p.Stop() })
		}
	}
	if sharedErr != nil {
		err := sharedErr
		shared, sharedErr = nil, nil
		t.Fatal(err)
	}
	return shared
}

// RunOption adjusts one run.
type RunOption func(*runConfig)

type runConfig struct {
	namespace string
	seed      uint64
	setSeed   bool
	progress  bool
	own       bool
	keep      bool
}

// Keep keeps the run's bundle even when it passes.
func Keep() RunOption { return func(c *runConfig) { c.keep = true } }

// Namespace runs in this namespace instead of a fresh one.
func Namespace(ns string) RunOption { return func(c *runConfig) { c.namespace = ns } }

// Seed overrides the scenario's seed.
func Seed(seed uint64) RunOption { return func(c *runConfig) { c.seed, c.setSeed = seed, true } }

// Progress logs the run's progress lines to the test.
func Progress() RunOption { return func(c *runConfig) { c.progress = true } }

// OwnPlane runs on a control plane of its own, started and stopped for
// this run (what faults on etcd's disk or link need; they get one
// anyway).
func OwnPlane() RunOption { return func(c *runConfig) { c.own = true } }

// Run runs scenario s against sys on the plane and returns its outcome.
// Each run gets a namespace of its own (its name with a counter) unless
// Namespace says otherwise, and a run bundle under the plane's
// directory, kept when the run fails (with report.html), when its test
// fails, or when the plane keeps runs; otherwise it is removed when the
// test ends. A run that could not be carried out is a test failure;
// invariants that fail are the outcome's to report:
//
//	out := plane.Run(t, s, sys)
//	require.True(t, out.Passed(), out.Explain())
func (p *Plane) Run(t testing.TB, s *scenarios.Scenario, sys *System, opts ...RunOption) *Outcome {
	t.Helper()
	out, err := p.run(t, s, sys, opts...)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return out
}

// Try is Run that returns the run's error instead of failing the test.
func (p *Plane) Try(t testing.TB, s *scenarios.Scenario, sys *System, opts ...RunOption) (*Outcome, error) {
	t.Helper()
	return p.run(t, s, sys, opts...)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

func (p *Plane) run(t testing.TB, s *scenarios.Scenario, sys *System, opts ...RunOption) (*Outcome, error) {
	var rc runConfig
	for _, o := range opts {
		o(&rc)
	}
	if sys == nil {
		return nil, errors.New("no System: the operator under test")
	}
	c := *s
	s = &c
	if rc.setSeed {
		s.Seed = rc.seed
	}
	n := p.runs.Add(1)
	ns := rc.namespace
	if ns == "" {
		base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(s.Name), "-"), "-")
		if len(base) > 40 {
			base = base[:40]
		}
		ns = base + "-" + strconv.FormatInt(n, 10)
	}
	s.Workload.Namespace = ns
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	testName := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	dir := filepath.Join(p.dir, "runs", fmt.Sprintf("%s-%s-%d", testName, s.Name, n))
	bw, err := bundle.Begin(dir, s, "local", bundle.CurrentVersions(p.apisrv), []string{"lab", t.Name()})
	if err != nil {
		return nil, fmt.Errorf("starting the run bundle: %w", err)
	}
	var progress *testWriter
	if rc.progress {
		progress = &testWriter{t: t}
	}
	ho := harness.Options{Dir: dir}
	if progress != nil {
		ho.Progress = progress
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var backend harness.Backend = p.shared.Backend()
	if rc.own {
		backend = &local.Backend{KubeAPIServer: p.apisrv}
	}
	t0 := time.Now()
	sum, runErr := harness.Run(ctx, s, sys, backend, ho)
	if errors.Is(runErr, local.ErrNeedsOwnPlane) {
		sum, runErr = harness.Run(ctx, s, sys, &local.Backend{KubeAPIServer: p.apisrv}, ho)
	}
	if progress != nil {
		progress.stop()
	}
	if ferr := bw.Finish(sum, runErr, false); ferr != nil {
		t.Logf("lab: finishing the bundle in %s: %v", dir, ferr)
	}
	out := &Outcome{Summary: sum, Dir: dir, Err: runErr, Wall: time.Since(t0)}
	if !out.Passed() {
		p.failed.Add(1)
		if page, err := htmlreport.Write(dir, htmlreport.Options{}); err == nil {
			out.Report = page
		}
		t.Logf("lab: %s failed; its bundle: %s", s.Name, dir)
	} else if !p.keep && !rc.keep {
		// A passing run's bundle lives until its test ends, so the test
		// can read its records, and stays when the test fails on its own
		// assertions about the run.
		t.Cleanup(func() {
			if t.Failed() {
				p.failed.Add(1)
				t.Logf("lab: %s passed, but the test failed; its bundle: %s", s.Name, dir)
				return
			}
			_ = os.RemoveAll(dir)
		})
	}
	return out, nil
}

// testWriter sends progress lines to t.Log until the run ends.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

package world

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/driftlab/driftlab/internal/assets"
)

// DefaultControllers are the kube-controller-manager controllers a world
// runs unless Config.Controllers says otherwise (the manager's names or
// aliases, as its --controllers flag takes them).
var DefaultControllers = []string{
	"deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob",
	"garbagecollector", "namespace", "serviceaccount", "serviceaccount-token",
	"endpoint", "endpointslice", "nodelifecycle", "taint-eviction-controller",
	"podgc", "ttl-after-finished", "root-ca-cert-publisher",
}

// None as Config.Controllers starts no kube-controller-manager.
var None = []string{"none"}

// Config configures a world. The zero value of each field means its default.
type Config struct {
	// Dir receives kube-controller-manager.log, kube-scheduler.log and the
	// files the components are given; required.
	Dir string
	// Admin is a rest.Config allowed to write Nodes and Leases (the
	// heartbeater's, and the readiness checks'); required.
	Admin *rest.Config
	// Kubeconfig is the scheduler's kubeconfig file, and the
	// controller-manager's unless ControllerManagerKubeconfig is set;
	// required.
	Kubeconfig string
	// ControllerManagerKubeconfig, when set, is the controller-manager's
	// kubeconfig (say, through a fault proxy).
	ControllerManagerKubeconfig string

	// APIServer, when set, supplies ServiceAccountKeyFile and RootCAFile
	// from an envtest kube-apiserver: its service-account signing key
	// (CertDir/sa-signer.key) and the CA of its serving certificate.
	APIServer *envtest.APIServer
	// ServiceAccountKeyFile is the private key the apiserver verifies
	// service-account tokens with (its --service-account-signing-key-file);
	// the controller-manager signs tokens with it. Without it the
	// serviceaccount-token controller does not run.
	ServiceAccountKeyFile string
	// RootCAFile is the CA put into service-account token secrets and
	// kube-root-ca.crt ConfigMaps.
	RootCAFile string

	// Controllers are the controller-manager's controllers; default
	// DefaultControllers; None: no controller-manager.
	Controllers []string
	// NoScheduler: do not start kube-scheduler.
	NoScheduler bool
	// Nodes is how many simulated Nodes to create (0: none).
	Nodes int
	// NodePrefix names the Nodes: <prefix>0, <prefix>1, …; default "sim-node-".
	NodePrefix string
	// LeaseRenewInterval is how often each Node's Lease is renewed; default
	// 10s (the kubelet's). Leases last four intervals.
	LeaseRenewInterval time.Duration
	// StatusInterval is how often each Node's Ready condition heartbeat is
	// written; default 1m.
	StatusInterval time.Duration

	// ControllerManagerBinary and SchedulerBinary are the binaries; default
	// assets.Find.
	ControllerManagerBinary, SchedulerBinary string
	// ControllerManagerArgs and SchedulerArgs are extra flags, appended
	// after driftlab's (a later flag wins).
	ControllerManagerArgs, SchedulerArgs []string
	// StartTimeout bounds each component's start; default 60s.
	StartTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL;
	// default 10s.
	StopGrace time.Duration
}

// Startup is how long each part of a world took to start; the parts start
// at once, so Total is about the longest.
type Startup struct {
	// ControllerManager: from exec to /healthz answering with the
	// controllers' checks registered (they are built, informers starting).
	ControllerManager time.Duration
	// Scheduler: from exec to /readyz answering ok (informers synced).
	Scheduler time.Duration
	// Nodes: from the first request to every Node Ready, untainted and
	// holding a Lease.
	Nodes time.Duration
	// Total: the whole of Start.
	Total time.Duration
}

// World is a running controller-manager, scheduler and set of simulated
// Nodes.
type World struct {
	// Startup holds start-up times.
	Startup Startup
	// Nodes are the names of the simulated Nodes.
	Nodes []string

	cm, sched *process
	nodes     *heartbeater
	stopOnce  sync.Once
	stopErr   error
}

// Start starts the controller-manager, the scheduler and the Nodes, all at
// once, and returns when every one is ready. On error everything already
// started is stopped. ctx bounds the start only; the world runs until Stop.
func Start(ctx context.Context, cfg Config) (w *World, err error) {
	t0 := time.Now()
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	w = &World{}
	defer func() {
		if err != nil {
			_ = w.Stop()
			w = nil
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	runCM := !slices.Equal(cfg.Controllers, None)
	var cert servingCert
	if runCM || !cfg.NoScheduler {
		if cert, err = writeServingCert(cfg.Dir); err != nil {
			return w, err
		}
	}
	var cmArgs []string
	if runCM {
		if cmArgs, err = cfg.controllerManagerArgs(cert); err != nil {
			return w, err
		}
	}
	cs, err := kubernetes.NewForConfig(cfg.Admin)
	if err != nil {
		return w, err
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(e error) {
		mu.Lock()
		errs = append(errs, e)
		mu.Unlock()
		cancel() // the others need not finish starting
	}
	if runCM {
		wg.Go(func() {
			p, err := startProcess(ctx, processSpec{
				name: "kube-controller-manager", binary: cfg.ControllerManagerBinary, dir: cfg.Dir,
				args: cmArgs, extra: cfg.ControllerManagerArgs, cert: cert, ready: controllerManagerReady, grace: cfg.StopGrace,
			})
			mu.Lock()
			w.cm = p
			mu.Unlock()
			if err != nil {
				fail(err)
				return
			}
			w.Startup.ControllerManager = p.startup
		})
	}
	if !cfg.NoScheduler {
		wg.Go(func() {
			p, err := startProcess(ctx, processSpec{
				name: "kube-scheduler", binary: cfg.SchedulerBinary, dir: cfg.Dir,
				args: cfg.schedulerArgs(cert), extra: cfg.SchedulerArgs, cert: cert, ready: schedulerReady, grace: cfg.StopGrace,
			})
			mu.Lock()
			w.sched = p
			mu.Unlock()
			if err != nil {
				fail(err)
				return
			}
			w.Startup.Scheduler = p.startup
		})
	}
	if cfg.Nodes > 0 {
		wg.Go(func() {
			t := time.Now()
			h, err := startNodes(ctx, cs, cfg)
			mu.Lock()
			w.nodes = h
			mu.Unlock()
			if err != nil {
				fail(fmt.Errorf("simulated nodes: %w", err))
				return
			}
			w.Nodes = h.names
			w.Startup.Nodes = time.Since(t)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		// A component that gave up because another failed says "context
		// canceled"; the first error is the cause.
		return w, errs[0]
	}
	w.Startup.Total = time.Since(t0)
	return w, nil
}

func (cfg *Config) defaults() error {
	if cfg.Dir == "" {
		return errors.New("world: Config.Dir is required")
	}
	if cfg.Admin == nil {
		return errors.New("world: Config.Admin is required")
	}
	if cfg.Kubeconfig == "" {
		return errors.New("world: Config.Kubeconfig is required")
	}
	if cfg.Controllers == nil {
		cfg.Controllers = DefaultControllers
	}
	if len(cfg.Controllers) == 0 {
		return errors.New("world: Config.Controllers is empty (nil: the defaults; world.None: no controller-manager)")
	}
	if slices.Contains(cfg.Controllers, "none") && len(cfg.Controllers) > 1 {
		return fmt.Errorf("world: Config.Controllers %v: \"none\" cannot be combined with other controllers", cfg.Controllers)
	}
	if cfg.NodePrefix == "" {
		cfg.NodePrefix = "sim-node-"
	}
	if cfg.LeaseRenewInterval == 0 {
		cfg.LeaseRenewInterval = 10 * time.Second
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = time.Minute
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 10 * time.Second
	}
	var err error
	if !slices.Equal(cfg.Controllers, None) && cfg.ControllerManagerBinary == "" {
		if cfg.ControllerManagerBinary, err = assets.Find("kube-controller-manager"); err != nil {
			return err
		}
	}
	if !cfg.NoScheduler && cfg.SchedulerBinary == "" {
		if cfg.SchedulerBinary, err = assets.Find("kube-scheduler"); err != nil {
			return err
		}
	}
	return nil
}

// controllerManagerArgs are the controller-manager's flags; they write the
// apiserver's CA into Dir when it comes from Config.APIServer.
func (cfg *Config) controllerManagerArgs(cert servingCert) ([]string, error) {
	if cfg.APIServer != nil {
		if cfg.ServiceAccountKeyFile == "" {
			cfg.ServiceAccountKeyFile = filepath.Join(cfg.APIServer.CertDir, "sa-signer.key")
		}
		if cfg.RootCAFile == "" && len(cfg.APIServer.SecureServing.CA) > 0 {
			cfg.RootCAFile = filepath.Join(cfg.Dir, "apiserver-ca.crt")
			if err := os.WriteFile(cfg.RootCAFile, cfg.APIServer.SecureServing.CA, 0o644); err != nil {
				return nil, err
			}
		}
	}
	kc := cfg.Kubeconfig
	if cfg.ControllerManagerKubeconfig != "" {
		kc = cfg.ControllerManagerKubeconfig
	}
	args := []string{
		"--kubeconfig=" + kc,
		"--leader-elect=false",
		"--controllers=" + strings.Join(cfg.Controllers, ","),
		"--use-service-account-credentials=false",
		"--controller-shutdown-timeout=5s",
	}
	args = append(args, cert.flags()...)
	if cfg.ServiceAccountKeyFile != "" {
		args = append(args, "--service-account-private-key-file="+cfg.ServiceAccountKeyFile)
	}
	if cfg.RootCAFile != "" {
		args = append(args, "--root-ca-file="+cfg.RootCAFile)
	}
	return args, nil
}

func (cfg *Config) schedulerArgs(cert servingCert) []string {
	return append([]string{
		"--kubeconfig=" + cfg.Kubeconfig,
		"--leader-elect=false",
	}, cert.flags()...)
}

// PIDs returns the process ids of the controller-manager and the
// scheduler that were started (for leak checks).
func (w *World) PIDs() []int {
	var pids []int
	for _, p := range []*process{w.cm, w.sched} {
		if p != nil && p.cmd.Process != nil {
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	return pids
}

// ControllerManagerURL and SchedulerURL are the components' secure
// serving addresses (https://127.0.0.1:port), or "" when not running.
func (w *World) ControllerManagerURL() string { return w.cm.url() }

// SchedulerURL: see ControllerManagerURL.
func (w *World) SchedulerURL() string { return w.sched.url() }

// Exited returns an error naming each component that has exited (crashed,
// or was killed) while the world runs, and nil while both run.
func (w *World) Exited() error {
	var errs []error
	for _, p := range []*process{w.cm, w.sched} {
		if p != nil {
			errs = append(errs, p.exitErr())
		}
	}
	return errors.Join(errs...)
}

// Stop stops the heartbeats and both components (SIGTERM, then SIGKILL
// after Config.StopGrace) and waits for them to exit. The Nodes stay in
// the apiserver. A component that had exited before Stop is reported.
// Calling Stop again returns the first result.
func (w *World) Stop() error {
	w.stopOnce.Do(func() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for _, p := range []*process{w.cm, w.sched} {
			if p == nil {
				continue
			}
			wg.Go(func() {
				if err := p.stop(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		if w.nodes != nil {
			w.nodes.stop()
		}
		wg.Wait()
		w.stopErr = errors.Join(errs...)
	})
	return w.stopErr
}

// HeartbeatFailures counts Lease renewals and status heartbeats of the
// Nodes that failed (each is tried again at the next interval).
func (w *World) HeartbeatFailures() int64 {
	if w.nodes == nil {
		return 0
	}
	return w.nodes.failures.Load()
}

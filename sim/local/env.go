package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/driftlab/driftlab/internal/embedetcd"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/world"
)

// Config configures the local control plane. The zero value of each field
// means its default.
type Config struct {
	// Dir receives the kubeconfig and the etcd and kube-apiserver logs;
	// required.
	Dir string
	// KubeAPIServer is the kube-apiserver binary; default FindKubeAPIServer().
	KubeAPIServer string
	// StartTimeout bounds each component's start. Default 60s.
	StartTimeout time.Duration
	// WALDir, when set, is etcd's WAL directory (a fault's FUSE mount).
	WALDir string
	// MaxConcurrentStreams, when set, caps gRPC streams per etcd connection.
	MaxConcurrentStreams uint32
	// EtcdProxy, when set, is given etcd's client address ("host:port") and
	// returns the address kube-apiserver must use instead (a fault proxy).
	EtcdProxy func(upstream string) (string, error)
	// AuditPolicyFile and AuditLogPath, when both set, make kube-apiserver
	// write an audit log (--audit-policy-file, --audit-log-path, JSON lines).
	AuditPolicyFile, AuditLogPath string
	// CRDs and CRDPaths (files or directories) are installed once the
	// apiserver runs.
	CRDs     []*apiextensionsv1.CustomResourceDefinition
	CRDPaths []string
	// World, when set, starts kube-controller-manager, kube-scheduler and
	// simulated Nodes once the CRDs are installed.
	World *scenarios.World
	// ControllerManagerProxy, when set, is given kube-apiserver's address
	// ("host:port") and returns the one kube-controller-manager must use
	// instead (a fault proxy).
	ControllerManagerProxy func(upstream string) (string, error)
}

// Startup is how long each part of the control plane took to start.
type Startup struct {
	Etcd      time.Duration
	APIServer time.Duration
	CRDs      time.Duration
	// World is the world's, when it has one.
	World world.Startup
}

// Env is a running local control plane.
type Env struct {
	// Etcd is the embedded etcd server.
	Etcd *embed.Etcd
	// EtcdURL is etcd's client URL (127.0.0.1).
	EtcdURL *url.URL
	// APIServer is the envtest kube-apiserver process.
	APIServer *envtest.APIServer
	// Admin is a rest.Config of a system:masters user.
	Admin *rest.Config
	// Kubeconfig is the path of the admin kubeconfig (mode 0600).
	Kubeconfig string
	// Startup holds start-up times.
	Startup Startup
	// CRDs are the CRDs installed.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// World is the running world (Config.World), or nil.
	World *world.World

	cp      *envtest.ControlPlane
	dataDir string
	logs    []io.Closer
	// apiLog is kube-apiserver.log (also in logs).
	apiLog *os.File
}

// FindKubeAPIServer locates the kube-apiserver binary: $KUBEBUILDER_ASSETS,
// $TEST_ASSET_KUBE_APISERVER, then bin/k8s/*/ under the working directory or
// any parent (where `make envtest-assets` builds it).
func FindKubeAPIServer() (string, error) {
	var tried []string
	check := func(p string) bool {
		tried = append(tried, p)
		st, err := os.Stat(p)
		return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" && check(filepath.Join(d, "kube-apiserver")) {
		return filepath.Join(d, "kube-apiserver"), nil
	}
	if p := os.Getenv("TEST_ASSET_KUBE_APISERVER"); p != "" && check(p) {
		return p, nil
	}
	dir, _ := os.Getwd()
	for dir != "" {
		matches, _ := filepath.Glob(filepath.Join(dir, "bin", "k8s", "*", "kube-apiserver"))
		for _, m := range matches {
			if check(m) {
				return m, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("kube-apiserver not found (run `make envtest-assets`, or set KUBEBUILDER_ASSETS to a directory holding it); looked in KUBEBUILDER_ASSETS, TEST_ASSET_KUBE_APISERVER and bin/k8s/*/ up from the working directory")
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts etcd, then kube-apiserver, then installs the CRDs. On error
// everything already started is stopped.
func Start(ctx context.Context, cfg Config) (env *Env, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("local: Config.Dir is required")
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.KubeAPIServer == "" {
		if cfg.KubeAPIServer, err = FindKubeAPIServer(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	env = &Env{}
	defer func() {
		if err != nil {
			_ = env.Stop()
			env = nil
		}
	}()

	t0 := time.Now()
	if err = env.startEtcd(ctx, cfg); err != nil {
		return env, fmt.Errorf("starting embedded etcd: %w", err)
	}
	env.Startup.Etcd = time.Since(t0)

	apiEtcd := env.EtcdURL
	if cfg.EtcdProxy != nil {
		addr, err := cfg.EtcdProxy(env.EtcdURL.Host)
		if err != nil {
			return env, err
		}
		apiEtcd = &url.URL{Scheme: "http", Host: addr}
	}

	t1 := time.Now()
	apiLog, err := os.Create(filepath.Join(cfg.Dir, "kube-apiserver.log"))
	if err != nil {
		return env, err
	}
	env.logs = append(env.logs, apiLog)
	env.apiLog = apiLog
	env.APIServer = &envtest.APIServer{
		EtcdURL:      apiEtcd,
		Path:         cfg.KubeAPIServer,
		StartTimeout: cfg.StartTimeout,
		StopTimeout:  apiserverStopTimeout,
		Out:          apiLog,
		Err:          apiLog,
	}
	env.APIServer.SecureServing.Address = "127.0.0.1"
	// kube-apiserver does not end open watches when it shuts down unless
	// told to: a client still watching through the run's kubeconfig (the
	// README invites kubectl) kept its HTTP server draining for its 60 s
	// request timeout, past StopTimeout. With a grace period it closes them
	// (rate-limited) and exits.
	env.APIServer.Configure().Set("shutdown-watch-termination-grace-period", apiserverWatchGrace.String())
	if cfg.AuditPolicyFile != "" && cfg.AuditLogPath != "" {
		env.APIServer.Configure().
			Set("audit-policy-file", cfg.AuditPolicyFile).
			Set("audit-log-path", cfg.AuditLogPath).
			Set("audit-log-format", "json").
			Set("audit-log-mode", "blocking")
	}
	if err = env.APIServer.Start(); err != nil {
		return env, fmt.Errorf("starting kube-apiserver %s (log: %s): %w", cfg.KubeAPIServer, apiLog.Name(), err)
	}
	env.cp = &envtest.ControlPlane{APIServer: env.APIServer}
	user, err := env.cp.AddUser(envtest.User{Name: "driftlab-admin", Groups: []string{"system:masters"}}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return env, fmt.Errorf("provisioning admin user: %w", err)
	}
	env.Admin = user.Config()
	env.Startup.APIServer = time.Since(t1)

	kc, err := user.KubeConfig()
	if err != nil {
		return env, err
	}
	env.Kubeconfig = filepath.Join(cfg.Dir, "kubeconfig")
	if err = os.WriteFile(env.Kubeconfig, kc, 0o600); err != nil {
		return env, err
	}

	t2 := time.Now()
	if env.CRDs, err = InstallCRDs(env.Admin, cfg.CRDs, cfg.CRDPaths, cfg.StartTimeout); err != nil {
		return env, err
	}
	env.Startup.CRDs = time.Since(t2)
	if cfg.World != nil {
		if err = env.startWorld(ctx, cfg); err != nil {
			return env, err
		}
	}
	return env, nil
}

// startWorld starts the world around the running apiserver.
func (env *Env) startWorld(ctx context.Context, cfg Config) error {
	wc := world.Config{Dir: cfg.Dir, Admin: env.Admin, Kubeconfig: env.Kubeconfig, APIServer: env.APIServer,
		Controllers: cfg.World.Controllers, Nodes: cfg.World.Nodes, NoScheduler: cfg.World.NoScheduler, StartTimeout: cfg.StartTimeout}
	if cfg.ControllerManagerProxy != nil {
		u, err := url.Parse(env.Admin.Host)
		if err != nil {
			return err
		}
		addr, err := cfg.ControllerManagerProxy(u.Host)
		if err != nil {
			return err
		}
		if wc.ControllerManagerKubeconfig, err = kubeconfigVia(env.Kubeconfig, addr, filepath.Join(cfg.Dir, "controller-manager.kubeconfig")); err != nil {
			return err
		}
	}
	w, err := world.Start(ctx, wc)
	if err != nil {
		return fmt.Errorf("starting the world (kube-controller-manager, kube-scheduler, Nodes): %w", err)
	}
	env.World = w
	env.Startup.World = w.Startup
	return nil
}

// kubeconfigVia writes a copy of a kubeconfig whose server is addr (a
// fault proxy in front of kube-apiserver) to path.
func kubeconfigVia(kubeconfig, addr, path string) (string, error) {
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", err
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + addr
	}
	return path, clientcmd.WriteToFile(*kc, path)
}

// InstallCRDs installs CRDs, given as objects and as files or directories
// (as envtest reads them), and waits until the apiserver serves them. It
// returns what it installed.
func InstallCRDs(cfg *rest.Config, crds []*apiextensionsv1.CustomResourceDefinition, paths []string, maxTime time.Duration) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	if len(crds) == 0 && len(paths) == 0 {
		return nil, nil
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("CRD path %s: %w", p, err)
		}
	}
	copies := make([]*apiextensionsv1.CustomResourceDefinition, len(crds))
	for i, c := range crds {
		copies[i] = c.DeepCopy() // envtest writes into what it installs
	}
	out, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: copies, Paths: paths, ErrorIfPathMissing: true, MaxTime: maxTime})
	if err != nil {
		return nil, fmt.Errorf("installing CRDs: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("installing CRDs: no CustomResourceDefinition found in %s", strings.Join(paths, ", "))
	}
	return out, nil
}

// How kube-apiserver is stopped: it ends open watches within
// apiserverWatchGrace of SIGTERM, and is killed after apiserverStopTimeout.
const (
	apiserverWatchGrace  = 2 * time.Second
	apiserverStopTimeout = 20 * time.Second
)

// noteInAPIServerLog appends a line to kube-apiserver.log.
func (env *Env) noteInAPIServerLog(line string) {
	if env.apiLog != nil {
		fmt.Fprintln(env.apiLog, line)
	}
}

func (env *Env) startEtcd(ctx context.Context, cfg Config) error {
	dataDir, err := os.MkdirTemp("", "driftlab-etcd-")
	if err != nil {
		return err
	}
	env.dataDir = dataDir
	type started struct {
		e   *embed.Etcd
		u   *url.URL
		err error
	}
	done := make(chan started, 1)
	go func() {
		e, u, err := embedetcd.Start(embedetcd.Options{
			DataDir: filepath.Join(dataDir, "data"), WALDir: cfg.WALDir,
			LogFile: filepath.Join(cfg.Dir, "etcd.log"), ReadyTimeout: cfg.StartTimeout,
			Tweak: func(ec *embed.Config) {
				if cfg.MaxConcurrentStreams > 0 {
					ec.MaxConcurrentStreams = cfg.MaxConcurrentStreams
				}
			},
		})
		done <- started{e, u, err}
	}()
	select {
	case r := <-done:
		env.Etcd, env.EtcdURL = r.e, r.u
		return r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.e != nil {
				r.e.Close()
			}
		}()
		return ctx.Err()
	}
}

// EtcdClient returns an in-process etcd client (no network); close it after use.
func (env *Env) EtcdClient() *clientv3.Client { return v3client.New(env.Etcd.Server) }

// Stop stops the world, kube-apiserver, then etcd, and removes the etcd
// data directory.
func (env *Env) Stop() error {
	var errs []error
	if env.World != nil {
		if err := env.World.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the world: %w", err))
		}
		env.World = nil
	}
	if env.APIServer != nil {
		if err := env.APIServer.Stop(); err != nil {
			if strings.Contains(err.Error(), "timeout waiting for process") {
				// envtest killed it after StopTimeout (SIGKILL): it is gone,
				// and it keeps nothing the run needs (the truth is read from
				// the in-process etcd), so a client that held it open must not
				// fail the run. Its log says so.
				env.noteInAPIServerLog(fmt.Sprintf("driftlab: kube-apiserver did not stop within %s of SIGTERM and was killed (%v); the run is not affected", apiserverStopTimeout, err))
			} else {
				errs = append(errs, fmt.Errorf("stopping kube-apiserver: %w", err))
			}
		}
		env.APIServer = nil
	}
	if env.Etcd != nil {
		env.Etcd.Close()
		env.Etcd = nil
	}
	if env.dataDir != "" {
		if err := os.RemoveAll(env.dataDir); err != nil {
			errs = append(errs, err)
		}
		env.dataDir = ""
	}
	for _, c := range env.logs {
		_ = c.Close()
	}
	env.logs = nil
	return errors.Join(errs...)
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Setup is a controller-runtime operator run in this process: the
// harness builds the manager (the scheme, metrics and health probes on
// 127.0.0.1, leader election off, controller names not checked for
// uniqueness so that a test process can start it once per scenario) and
// Func adds the controllers, as a main function would.
type Setup struct {
	// Func adds the operator's controllers and webhooks to mgr.
	Func func(mgr ctrl.Manager) error
	// Scheme has the operator's types; nil means client-go's built-ins.
	Scheme *runtime.Scheme
	// Options, when set, adjusts the manager's options last.
	Options func(*ctrl.Options)
	// Config, when set, adjusts the operator's rest.Config (a request
	// timeout its main function sets, say).
	Config func(*rest.Config)
}

// Start builds the manager, calls Func and starts the manager.
func (s *Setup) Start(ctx context.Context, env OperatorEnv) (Process, error) {
	if s.Func == nil {
		return nil, errors.New("harness: Setup.Func is nil")
	}
	logPath := filepath.Join(env.Dir, "operator.log")
	var logf io.WriteCloser = nopCloser{env.Log}
	if env.Log == nil {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		logf = f
	}
	scheme := s.Scheme
	if scheme == nil {
		scheme = runtime.NewScheme()
		_ = clientgoscheme.AddToScheme(scheme)
	}
	opts := ctrl.Options{
		Scheme:                 scheme,
		Logger:                 zap.New(zap.WriteTo(logf), zap.UseDevMode(false)),
		Metrics:                metricsserver.Options{BindAddress: env.MetricsAddr},
		HealthProbeBindAddress: env.ProbeAddr,
		LeaderElection:         false,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if s.Options != nil {
		s.Options(&opts)
	}
	cfg := rest.CopyConfig(env.Config)
	if s.Config != nil {
		s.Config(cfg)
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("creating the operator's manager: %w", err)
	}
	if err := mgr.AddReadyzCheck("driftlab", healthz.Ping); err != nil {
		logf.Close()
		return nil, err
	}
	if err := s.Func(mgr); err != nil {
		logf.Close()
		return nil, fmt.Errorf("setting up the operator: %w", err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	p := &inProc{mgr: mgr, cancel: cancel, done: make(chan struct{}), log: logf, logPath: logPath}
	go func() {
		p.err = mgr.Start(mctx)
		close(p.done)
	}()
	return p, nil
}

// inProc is a manager started by Setup.
type inProc struct {
	mgr     ctrl.Manager
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // valid after done
	log     io.Closer
	logPath string
	stop    sync.Once
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (p *inProc) Log() string        { return p.logPath }
func (p *inProc) Send(cmd any) error { return ErrNoCommands }

// Ready waits until the manager's caches are synced and its controllers
// run.
func (p *inProc) Ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	synced := make(chan bool, 1)
	go func() { synced <- p.mgr.GetCache().WaitForCacheSync(ctx) }()
	select {
	case ok := <-synced:
		if !ok {
			return fmt.Errorf("operator not ready after %s: its caches did not sync (see %s)", timeout, p.logPath)
		}
		select {
		case <-p.mgr.Elected():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("operator not ready after %s (see %s)", timeout, p.logPath)
		}
	case <-p.done:
		return fmt.Errorf("operator exited before it was ready: %v (see %s)", p.err, p.logPath)
	}
}

// Stop cancels the manager and waits for it.
func (p *inProc) Stop(grace time.Duration) error {
	var err error
	p.stop.Do(func() {
		defer p.log.Close()
		select {
		case <-p.done:
			err = fmt.Errorf("operator exited during the run: %v (see %s)", p.err, p.logPath)
			return
		default:
		}
		p.cancel()
		select {
		case <-p.done:
			if p.err != nil && !errors.Is(p.err, context.Canceled) {
				err = p.err
			}
		case <-time.After(grace):
			err = fmt.Errorf("operator did not stop within %s", grace)
		}
	})
	return err
}

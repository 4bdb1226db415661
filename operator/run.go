package operator

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/controller"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/operator/watchtrace"
	"github.com/driftlab/driftlab/sim/history"
)

// Options configure the operator process. The zero value of each field
// means its default.
type Options struct {
	// Cache is the member state cache variant. Default "map".
	Cache string
	// Bugs are seeded bugs to switch on, by name.
	Bugs []string
	// MetricsAddr is where the Prometheus metrics endpoint listens. Default
	// "127.0.0.1:0" (a free loopback port); "0" disables it.
	MetricsAddr string
	// FieldOwner is the field manager of status writes.
	FieldOwner string
	// Workers is how many clusters are reconciled at once. Default
	// DefaultWorkers.
	Workers int
	// Events receives history records as JSON lines; nil discards them.
	Events io.Writer
	// Log receives the operator's logs; nil means standard error.
	Log io.Writer
	// Commands, when set, is read for harness commands (JSON lines, see
	// Command): runtime faults and runtime samples.
	Commands io.Reader
	// GCPressure, when set, grows the operator's heap on its own schedule
	// (the gc-assist-pressure fault where no harness drives the operator).
	GCPressure *GCPressure
}

// DefaultWorkers is the operator's default number of concurrent reconciles.
const DefaultWorkers = 4

// Scheme returns a scheme with the built-in types and the KVCluster API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := kvv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Run runs the operator until ctx is done.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.Cache == "" {
		o.Cache = "map"
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "127.0.0.1:0"
	}
	sc, err := statecache.New(o.Cache)
	if err != nil {
		return err
	}
	bs, err := bugs.Parse(o.Bugs)
	if err != nil {
		return err
	}
	logOpts := []zap.Opts{zap.UseDevMode(false)}
	if o.Log != nil {
		logOpts = append(logOpts, zap.WriteTo(o.Log))
	}
	ctrl.SetLogger(zap.New(logOpts...))

	podSelector := labels.SelectorFromSet(nil)
	if req, err := labels.NewRequirement(kvv1.LabelCluster, "exists", nil); err == nil {
		podSelector = podSelector.Add(*req)
	}
	ev := history.NewEmitter(o.Events)
	// Every request goes through the tracer, which records the informers'
	// watches (how each ends) and relists: the mechanism behind a lag.
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(watchtrace.New(ev).Wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: podSelector},
		}},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	r := &controller.Reconciler{Client: mgr.GetClient(), Cache: sc, Bugs: bs, Events: ev, FieldOwner: o.FieldOwner, MaxConcurrentReconciles: o.Workers}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up controller: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- mgr.Start(ctx) }()
	if o.Commands != nil {
		go serveCommands(ctx, o.Commands, ev)
	}
	if o.GCPressure != nil {
		go o.GCPressure.run(ctx, nil)
	}
	if mgr.GetCache().WaitForCacheSync(ctx) {
		ev.Emit(history.Record{Source: history.SourceOperator, Kind: history.KindOperatorReady, Detail: o.MetricsAddr})
	}
	return <-errc
}

// Command webapp runs the WebApp operator.
//
//	webapp --kubeconfig FILE [--metrics-bind-address 127.0.0.1:8080] [--health-probe-bind-address 127.0.0.1:8081]
package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"example.com/webapp/controller"
)

func main() {
	var metrics, probes string
	var broken, deployments bool
	flag.StringVar(&metrics, "metrics-bind-address", "127.0.0.1:8080", "metrics endpoint (\"0\" disables it)")
	flag.StringVar(&probes, "health-probe-bind-address", "127.0.0.1:8081", "health probes (/healthz, /readyz)")
	flag.BoolVar(&broken, "broken", false, "the seeded bug: do not watch the Pods the operator owns")
	flag.BoolVar(&deployments, "deployments", false, "run each WebApp's Pods through a Deployment (needs a controller-manager)")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse() // controller-runtime registers --kubeconfig
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 controller.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: metrics},
		HealthProbeBindAddress: probes,
	})
	if err != nil {
		ctrl.Log.Error(err, "creating the manager")
		os.Exit(1)
	}
	setup := controller.Setup
	switch {
	case broken:
		setup = controller.SetupBroken
	case deployments:
		setup = controller.SetupDeployments
	}
	if err := setup(mgr); err != nil {
		ctrl.Log.Error(err, "setting up the controller")
		os.Exit(1)
	}
	_ = mgr.AddHealthzCheck("ping", healthz.Ping)
	_ = mgr.AddReadyzCheck("ping", healthz.Ping)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		ctrl.Log.Error(err, "running the manager")
		os.Exit(1)
	}
}

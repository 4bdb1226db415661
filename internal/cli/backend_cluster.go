package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/sim/cluster"
	"github.com/driftlab/driftlab/sim/report"
)

func init() { backends["cluster"] = runCluster }

// clusterFlags are the flags of `driftlab run` that only the cluster
// backend reads.
type clusterFlags struct {
	kubeconfig       string
	chaos            string
	operator         string
	simulatedKubelet bool
	keep             bool
}

func (c *clusterFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "cluster backend: kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config)")
	f.StringVar(&c.chaos, "chaos", "", "cluster backend: Chaos Mesh objects from `driftlab chaos export`, created when the workload starts")
	f.StringVar(&c.operator, "operator", "process", "cluster backend: process (the reference operator in its own process here), in-process, or external (it runs in the cluster)")
	f.BoolVar(&c.simulatedKubelet, "simulated-kubelet", true, "cluster backend: make member Pods Ready with the simulated kubelet (off where real kubelets run them)")
	f.BoolVar(&c.keep, "keep", false, "cluster backend: leave the workload's KVClusters and Pods in the cluster")
}

func runCluster(r runRequest) (*report.Summary, error) {
	f := r.Cluster
	if f.kubeconfig != "" {
		if _, err := os.Stat(f.kubeconfig); err != nil {
			return nil, &exitError{ExitUsage, fmt.Errorf("--kubeconfig: %w", err)}
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, &exitError{ExitUsage, fmt.Errorf("the cluster backend needs a cluster: pass --kubeconfig FILE or set KUBECONFIG (%v)", err)}
	}
	sys, err := systemFor(r.Scenario)
	if err != nil {
		return nil, err
	}
	o := cluster.Options{Dir: r.Out, Config: cfg, System: sys, NoSimulatedKubelet: !f.simulatedKubelet, Keep: f.keep, Progress: r.Progress}
	switch f.operator {
	case "process":
	case "in-process":
		if !r.Scenario.Reference() {
			return nil, &exitError{ExitUsage, fmt.Errorf("--operator in-process runs the reference operator; scenario %s tests %s (use process or external)", r.Scenario.Name, r.Scenario.Subject.Kind)}
		}
		sys.Operator, sys.Commands = operator.InProcess(r.Scenario), false
	case "external":
		if len(r.Scenario.Operator.Bugs) > 0 || r.Scenario.Operator.GOMAXPROCS > 0 {
			fmt.Fprintln(r.Log, "driftlab: --operator external: the scenario's operator.bugs and operator.gomaxprocs are up to the operator's own deployment")
		}
		sys.Operator, sys.Commands = nil, false
	default:
		return nil, &exitError{ExitUsage, fmt.Errorf("--operator %q: want process, in-process or external", f.operator)}
	}
	if f.chaos != "" {
		objs, err := cluster.LoadChaos(f.chaos)
		if err != nil {
			return nil, &exitError{ExitUsage, fmt.Errorf("--chaos: %w", err)}
		}
		o.Chaos = objs
	}
	return cluster.Run(r.Ctx, r.Scenario, o)
}

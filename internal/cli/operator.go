package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
)

func init() { commands = append(commands, newOperatorCmd) }

func newOperatorCmd() *cobra.Command {
	var (
		kubeconfig, cache, metrics, events, owner string
		gcPressure                                string
		commands                                  bool
		workers                                   int
		bugList                                   []string
	)
	cmd := &cobra.Command{
		Use:   "operator --kubeconfig FILE",
		Short: "Run the reference operator (the harness starts it in its own process)",
		Long: fmt.Sprintf(`Run the reference KVCluster operator in a controller-runtime manager until
SIGTERM. The harness starts it this way during a run; it can also be run by
hand against any cluster that has the KVCluster CRD.

Cache variants:
%s
Seeded bugs (off by default):
%s`, cacheHelp(), bugHelp()),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 1 {
				return &exitError{ExitUsage, fmt.Errorf("--workers %d: want at least 1", workers)}
			}
			var pressure *operator.GCPressure
			if gcPressure != "" {
				var err error
				if pressure, err = operator.ParseGCPressure(gcPressure); err != nil {
					return &exitError{ExitUsage, err}
				}
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return &exitError{ExitUsage, fmt.Errorf("loading kubeconfig: %w", err)}
			}
			cfg.QPS, cfg.Burst = 100, 200
			var ev io.Writer
			switch events {
			case "":
			case "-":
				ev = cmd.OutOrStdout()
			default:
				f, err := os.Create(events)
				if err != nil {
					return &exitError{ExitUsage, err}
				}
				defer f.Close()
				ev = f
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := operator.Options{GCPressure: pressure, Cache: cache, Bugs: bugList, MetricsAddr: metrics, Events: ev, FieldOwner: owner, Workers: workers, Log: cmd.ErrOrStderr()}
			if commands {
				opts.Commands = cmd.InOrStdin()
			}
			err = operator.Run(ctx, cfg, opts)
			if err != nil {
				return &exitError{ExitRunFailed, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to manage (default: in-cluster or $KUBECONFIG)")
	f.StringVar(&cache, "cache", "map", "member state cache variant")
	f.StringSliceVar(&bugList, "bug", nil, "seeded bug to switch on (repeatable)")
	f.StringVar(&metrics, "metrics-bind-address", "127.0.0.1:0", "metrics endpoint address (\"0\" disables)")
	f.StringVar(&events, "events", "", "write history records as JSON lines to FILE, or - for standard output")
	f.StringVar(&owner, "field-owner", "", "field manager of status writes (default driftlab-operator)")
	f.IntVar(&workers, "workers", operator.DefaultWorkers, "clusters reconciled at once (MaxConcurrentReconciles)")
	f.StringVar(&gcPressure, "gc-pressure", "", "grow the operator's heap on its own: entries=N,rate=R[,after=D][,for=D] (the gc-assist-pressure fault without a harness, e.g. on a cluster)")
	f.BoolVar(&commands, "commands", false, "read harness commands (JSON lines) from standard input: runtime faults, runtime samples")
	return cmd
}

func bugHelp() string {
	var b strings.Builder
	for _, n := range bugs.Names() {
		fmt.Fprintf(&b, "  %-25s %s\n", n, bugs.Table[n])
	}
	return b.String()
}

func cacheHelp() string {
	var b strings.Builder
	for _, n := range statecache.Variants() {
		fmt.Fprintf(&b, "  %-10s %s\n", n, statecache.Descriptions[n])
	}
	return b.String()
}

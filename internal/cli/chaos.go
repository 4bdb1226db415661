package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/chaos"
	"github.com/driftlab/driftlab/scenarios"
)

func init() { commands = append(commands, newChaosCmd) }

func newChaosCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Chaos Mesh: export a scenario's faults for a real cluster",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var o chaos.Options
	export := &cobra.Command{
		Use:   "export [flags] SCENARIO.yaml|NAME",
		Short: "Print a scenario's faults as Chaos Mesh objects (multi-document YAML)",
		Long: `Print the scenario's faults as Chaos Mesh objects on standard output:
wal-fsync-delay as an IOChaos on etcd's fsync, network-retransmit as a
NetworkChaos (loss and delay) on the link's Pods, gc-assist-pressure as a
StressChaos on the operator, all scheduled by one Workflow (Suspend nodes for
the start offsets), and watcher-exhaustion as a Job running
"driftlab watchstorm". Faults that cannot be exported are listed, with the
reason, as YAML comments and on standard error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenarios.Load(args[0])
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			e, err := chaos.Build(s, o)
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			b, err := e.YAML()
			if err != nil {
				return &exitError{ExitRunFailed, err}
			}
			for _, sk := range e.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: %s\n", sk)
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	f := export.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", chaos.DefaultNamespace, "namespace of the Workflow and the Jobs")
	f.StringVar(&o.OperatorNamespace, "operator-namespace", chaos.DefaultOperatorNamespace, "namespace the operator runs in (its Pods are the target of operator faults)")
	f.StringVar(&o.Image, "image", chaos.DefaultImage, "driftlab image the watchstorm Job runs")
	f.StringVar(&o.EtcdURL, "etcd-url", chaos.DefaultEtcdURL, "etcd endpoint of the watchstorm Job, from the control-plane node")
	cmd.AddCommand(export)
	return cmd
}

package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/auditimport"
)

func init() { commands = append(commands, newImportCmd) }

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Turn a record of real traffic into a scenario",
	}
	var (
		out, name, namespace string
		users                []string
	)
	audit := &cobra.Command{
		Use:   "audit [flags] AUDIT.log",
		Short: "Turn a kube-apiserver audit log into a scenario that replays its KVCluster traffic",
		Long: `Read a kube-apiserver audit log (audit.k8s.io/v1 Event objects, JSON lines,
as written with --audit-log-path and --audit-log-format=json) and write a
scenario whose workload is the log's successful create, update, patch and
delete requests on KVClusters, at the times they were received
(workload.operations). Run it on either backend, with faults added, to replay
an incident's traffic. What cannot be replayed is counted and reported.

The log must carry request/response bodies for KVClusters; this policy
records exactly that (driftlab run --audit-log FILE uses it):

` + auditimport.AuditPolicy,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, st, err := auditimport.ImportFile(args[0], auditimport.Options{Name: name, Namespace: namespace, Users: users})
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			y, err := scenarios.Encode(s)
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: %s: %s\n", args[0], st.Summary())
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(y)
				return err
			}
			if err := os.WriteFile(out, y, 0o644); err != nil {
				return &exitError{ExitUsage, err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: wrote scenario %s to %s (driftlab run %s)\n", s.Name, out, out)
			return nil
		},
	}
	f := audit.Flags()
	f.StringVarP(&out, "out", "o", "", "write the scenario here (default: standard output)")
	f.StringVar(&name, "name", "", "scenario name (default: from the log's file name)")
	f.StringVar(&namespace, "namespace", "", "keep only this namespace's KVClusters (required when the log holds several)")
	f.StringSliceVar(&users, "user", nil, "keep only requests of these users (repeatable)")
	cmd.AddCommand(audit)
	return cmd
}

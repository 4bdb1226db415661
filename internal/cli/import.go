package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/auditimport"
	"github.com/driftlab/driftlab/sim/subject"
)

func init() { commands = append(commands, newImportCmd) }

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Turn a record of real traffic into a scenario",
	}
	var (
		out, name, namespace, into string
		users                      []string
	)
	audit := &cobra.Command{
		Use:   "audit [flags] AUDIT.log",
		Short: "Turn a kube-apiserver audit log into a scenario that replays its traffic",
		Long: `Read a kube-apiserver audit log (audit.k8s.io/v1 Event objects, JSON lines,
as written with --audit-log-path and --audit-log-format=json) and write a
scenario whose workload is the log's successful create, update, patch and
delete requests on one kind, at the times they were received
(workload.operations): the reference operator's KVClusters, or with --into
the subject kind of a scenario of yours (the result is that scenario with
the log's workload). Run it with faults added to replay an incident's
traffic. What cannot be replayed is counted and reported.

The log must carry request/response bodies for the kind; driftlab run
--audit-log FILE writes one with a policy like this (KVClusters):

` + auditimport.AuditPolicy,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := auditimport.Options{Name: name, Namespace: namespace, Users: users}
			if into != "" {
				base, err := scenarios.Load(into)
				if err != nil {
					return &exitError{ExitUsage, fmt.Errorf("--into: %w", err)}
				}
				if base.Subject == nil {
					return &exitError{ExitUsage, fmt.Errorf("--into %s: the scenario declares no subject (leave --into out for KVClusters)", into)}
				}
				subj, err := subject.Compile(*base.Subject)
				if err != nil {
					return &exitError{ExitUsage, fmt.Errorf("--into %s: %w", into, err)}
				}
				o.Into = base
				o.Target = auditimport.Target{Resource: subj.GVR.GroupResource(), Kind: subj.GVK.Kind}
				if p := base.Subject.Replicas; p != "" {
					o.Target.Replicas = strings.Split(p, ".")
				}
			}
			s, st, err := auditimport.ImportFile(args[0], o)
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
	f.StringVar(&namespace, "namespace", "", "keep only this namespace's objects (required when the log holds several)")
	f.StringSliceVar(&users, "user", nil, "keep only requests of these users (repeatable)")
	f.StringVar(&into, "into", "", "a scenario of yours whose subject kind to replay: the result is it with the log's workload")
	cmd.AddCommand(audit)
	return cmd
}

package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/faults/failpoint"
)

func init() { commands = append(commands, newFailpointsCmd) }

func newFailpointsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "failpoints",
		Short: "List the failpoints a scenario can switch on, and whether this build has them",
		Long: "Lists etcd's gofail failpoints and the reference operator's own, with where each one acts,\n" +
			"and says whether this binary was built with them (make test-failpoints; docs/faults.md \"Failpoints\").",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			for _, sys := range []string{failpoint.SystemOperator, failpoint.SystemEtcd} {
				var probe failpoint.Info
				for _, fp := range failpoint.Catalogue() {
					if fp.System == sys {
						probe = fp
						break
					}
				}
				if err := failpoint.Available(probe); err != nil {
					fmt.Fprintf(out, "%s failpoints: not in this build (%v)\n", sys, err)
				} else {
					fmt.Fprintf(out, "%s failpoints: in this build\n", sys)
				}
			}
			fmt.Fprintln(out)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSYSTEM\tFILE\tWHAT")
			for _, fp := range failpoint.Catalogue() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fp.Name, fp.System, fp.File, fp.What)
			}
			return tw.Flush()
		},
	}
}

package cli

import (
	"fmt"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newScenariosCmd) }

func newScenariosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the built-in scenarios",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, n := range scenarios.BuiltinNames() {
				s, err := scenarios.Builtin(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-24s %s\n", n, s.Description)
			}
			return nil
		},
	}
}

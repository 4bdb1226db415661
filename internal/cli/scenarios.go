package cli

import (
	"fmt"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/subject"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newScenariosCmd) }

func newScenariosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios [FILE.yaml...]",
		Short: "List the built-in scenarios, or check scenario files",
		Long: `Without arguments, list the built-in scenarios. With files, load and check
each (its subject compiled too: field paths, CEL truths) and say what it
tests; exit code 2 on the first bad file, with its file, line and field.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				for _, n := range scenarios.BuiltinNames() {
					s, err := scenarios.Builtin(n)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%-24s %s\n", n, s.Description)
				}
				return nil
			}
			for _, path := range args {
				s, err := scenarios.Load(path)
				if err != nil {
					return &exitError{ExitUsage, err}
				}
				what := "the reference operator's KVCluster"
				if s.Subject != nil {
					if _, err := subject.Compile(*s.Subject); err != nil {
						return &exitError{ExitUsage, fmt.Errorf("%s: %w", path, err)}
					}
					what = fmt.Sprintf("%s (%s), %d properties", s.Subject.Kind, s.Subject.APIVersion, len(s.Subject.Properties))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: scenario %s tests %s; %d faults\n", path, s.Name, what, len(s.Faults))
			}
			return nil
		},
	}
}

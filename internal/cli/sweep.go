package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/sweep"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newSweepCmd) }

func newSweepCmd() *cobra.Command {
	var (
		backend, shard, out string
		seeds, workers      int
	)
	cmd := &cobra.Command{
		Use:   "sweep --backend virtual [--seeds N] [--shard i/n] SCENARIO.yaml",
		Short: "Run a scenario over many seeds on the virtual backend",
		Long: `Run a scenario over N seeds (from its seed upwards) on the virtual backend, on
all cores, with a progress bar. Failing seeds are printed with the command that
replays each one; the exit code is 1 when any seed fails. --shard i/n runs only
the seeds whose offset is i modulo n, so n machines (for example the pods of
the Indexed Job in deploy/sweep-job.yaml) split one sweep without overlap.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if backend != "virtual" {
				return &exitError{ExitUsage, fmt.Errorf("sweep runs on the virtual backend: pass --backend virtual (a local run takes about 30 s per seed)")}
			}
			s, err := scenarios.Load(args[0])
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			i, n, err := sweep.ParseShard(shard)
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			r := sweep.Run(s, sweep.Options{Seeds: seeds, Shard: i, Shards: n, Workers: workers, Progress: cmd.ErrOrStderr(), Scenario: args[0]})
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%d runs of %s (shard %d/%d) in %.2fs: %d failing; %.0f simulated seconds per wall second\n",
				r.Runs, s.Name, i, n, r.Elapsed.Seconds(), len(r.Failures), r.SimTime.Seconds()/max(r.Elapsed.Seconds(), 1e-9))
			for _, f := range r.Failures {
				what := strings.Join(f.Invariants, ", ")
				if f.Err != "" {
					what = "run error: " + f.Err
				}
				fmt.Fprintf(w, "  seed %d: %s: %s\n    %s\n", f.Seed, what, f.Detail, f.Command)
			}
			if out != "" {
				b, _ := json.MarshalIndent(r, "", "  ")
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return &exitError{ExitRunFailed, err}
				}
			}
			if len(r.Failures) > 0 {
				return &exitError{ExitFailed, nil}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&backend, "backend", "", "backend: virtual (required)")
	f.IntVar(&seeds, "seeds", 100, "number of seeds in the whole sweep")
	f.StringVar(&shard, "shard", "", "run only shard i of n (i/n)")
	f.IntVar(&workers, "workers", 0, "parallel runs (default: all cores)")
	f.StringVar(&out, "json", "", "also write the result as JSON to this file")
	return cmd
}

package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/sweep"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newSweepCmd) }

// tuneGCForRuns sets the process's GC target to virtual.ManyRunsGCPercent
// for commands that carry out many virtual runs (sweep, shrink), unless
// GOGC is set in the environment, which wins.
func tuneGCForRuns() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(virtual.ManyRunsGCPercent)
	}
}

func newSweepCmd() *cobra.Command {
	var (
		backend, shard, out string
		seeds, workers      int
		show                int
		swarm               bool
	)
	cmd := &cobra.Command{
		Use:   "sweep --backend virtual [--seeds N] [--swarm] [--shard i/n] SCENARIO.yaml",
		Short: "Run a scenario over many seeds on the virtual backend",
		Long: `Run a scenario over N seeds (from its seed upwards) on the virtual backend, on
all cores, with a progress bar; the first 3 failures show as they happen.
At the end, failing seeds are printed with the failed invariant, its detail,
and the commands that replay and shrink each one; the exit code is 1 when
any seed fails. --shard i/n runs only the seeds whose
offset is i modulo n, so n machines (for example the pods of the Indexed Job
in deploy/sweep-job.yaml) split one sweep without overlap.

--swarm (swarm testing, FoundationDB's BUGGIFY idea): each seed switches each
of the scenario's faults on or off, with probability 1/2, from a random stream
derived from the seed alone, so a seed chooses the same faults on every
machine and shard; "driftlab run --swarm --seed S" replays that choice. The
report lists, per failure, the faults that were on, and, per fault, how often
runs failed with it on and with it off.`,
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
			if seeds < 1 {
				return &exitError{ExitUsage, fmt.Errorf("--seeds %d: want at least 1", seeds)}
			}
			if err := checkWorkers(workers); err != nil {
				return err
			}
			tuneGCForRuns()
			stderr := cmd.ErrOrStderr()
			// Ctrl-C or SIGTERM: the runs under way finish, no new one
			// starts, and what was done is printed and written.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r := sweep.Run(s, sweep.Options{Run: virtual.Verdict, Seeds: seeds, Shard: i, Shards: n, Workers: workers, Swarm: swarm,
				Progress: stderr, ProgressLines: !isTerminal(stderr), Scenario: args[0], Live: 3, Context: ctx})
			printSweep(cmd.OutOrStdout(), s, r, i, n, swarm, show)
			if out != "" {
				b, _ := json.MarshalIndent(r, "", "  ")
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return &exitError{ExitRunFailed, err}
				}
			}
			switch {
			case r.Interrupted:
				return &exitError{ExitRunFailed, fmt.Errorf("interrupted after %d of %d runs (%d failing); the figures above cover those runs", r.Runs, r.Planned, len(r.Failures))}
			case len(r.Failures) > 0:
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
	f.BoolVar(&swarm, "swarm", false, "let each seed choose which faults are on")
	f.IntVar(&show, "show", 10, "failing seeds to print in full (all are in --json)")
	f.StringVar(&out, "json", "", "also write the result as JSON to this file")
	return cmd
}

// printSweep writes a sweep's report: one line of totals, failures by
// invariant, per-fault swarm figures, and the first failing seeds, each
// with what failed and the commands to replay and shrink it.
func printSweep(w io.Writer, s *scenarios.Scenario, r sweep.Result, shard, shards int, swarm bool, show int) {
	mode := ""
	if swarm {
		mode = ", swarm"
	}
	if r.Interrupted {
		mode += fmt.Sprintf(", interrupted: %d of %d runs done", r.Runs, r.Planned)
	}
	fmt.Fprintf(w, "%d runs of %s (shard %d/%d%s) in %.2fs: %d failing; %.0f simulated seconds per wall second\n",
		r.Runs, s.Name, shard, shards, mode, r.Elapsed.Seconds(), len(r.Failures), r.SimTime.Seconds()/max(r.Elapsed.Seconds(), 1e-9))
	if len(r.ByInvariant) > 0 {
		names := make([]string, 0, len(r.ByInvariant))
		for n := range r.ByInvariant {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for k, n := range names {
			parts[k] = fmt.Sprintf("%s %d", n, r.ByInvariant[n])
		}
		fmt.Fprintf(w, "failing seeds by invariant: %s\n", strings.Join(parts, ", "))
	}
	if len(r.Swarm) > 0 {
		fmt.Fprintln(w, "swarm: failing runs with each fault on / off")
		for _, st := range r.Swarm {
			fmt.Fprintf(w, "  [%d] %-68s on %s   off %s\n", st.Index, st.Fault, share(st.FailedOn, st.On), share(st.FailedOff, st.Off))
		}
	}
	for k, f := range r.Failures {
		if k == show {
			fmt.Fprintf(w, "... and %d more failing seeds (--show N prints more, --json FILE writes all)\n", len(r.Failures)-show)
			break
		}
		what := strings.Join(f.Invariants, ", ")
		if f.Err != "" {
			what = "run error: " + f.Err
		}
		fmt.Fprintf(w, "FAIL seed %d: %s: %s\n", f.Seed, what, f.Detail)
		if f.Subset != "" {
			fmt.Fprintf(w, "    %s\n", f.Subset)
		}
		fmt.Fprintf(w, "    replay: %s\n    shrink: %s\n", f.Command, f.Shrink)
	}
}

func share(n, of int) string {
	if of == 0 {
		return "   -   (0 runs)"
	}
	return fmt.Sprintf("%5.1f%% (%d/%d)", 100*float64(n)/float64(of), n, of)
}

// checkWorkers refuses a negative --workers (0 means all cores).
func checkWorkers(workers int) error {
	if workers < 0 {
		return &exitError{ExitUsage, fmt.Errorf("--workers %d: want 0 (all cores) or more", workers)}
	}
	return nil
}

// isTerminal reports whether w is a terminal (a character device), where a
// progress bar can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// swarmSubset is `driftlab run --swarm`: the scenario with the faults its
// seed switches on, as a swarm sweep chooses them.
func swarmSubset(log io.Writer, s *scenarios.Scenario) *scenarios.Scenario {
	sub, on := sweep.Swarm(s, s.Seed)
	fmt.Fprintf(log, "driftlab: --swarm: seed %d runs %s\n", s.Seed, sweep.DescribeSubset(s, on))
	return sub
}

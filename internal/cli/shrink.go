package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/shrink"
	"github.com/driftlab/driftlab/sim/sweep"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newShrinkCmd) }

func newShrinkCmd() *cobra.Command {
	var (
		seed     uint64
		swarm    bool
		out, inv string
		maxRuns  int
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "shrink [--seed N] [--swarm] [--out FILE] [--invariant NAME] SCENARIO.yaml|RUN-DIR",
		Short: "Minimise a failing virtual-backend run to the smallest scenario that still fails",
		Long: `Run a scenario with a seed on the virtual backend; if an invariant fails, search
for a smaller scenario that, with the same seed, still fails that invariant:
fewer faults, shorter and moved fault windows, a shorter workload with fewer
clusters, scale steps and annotations and no deletes (delta debugging, biggest
reductions first, each kept only if the run still fails; at most --max-runs
runs, one progress line each). The minimal scenario is written as YAML with a
comment header saying where it came from, replayed once more from the file to
check that it fails, and the command that replays it is printed.

--swarm shrinks the run "driftlab sweep --swarm" made for that seed (only the
faults the seed switched on). Given a run directory instead of a scenario,
shrink starts from the scenario.yaml the run wrote there (the scenario as it
ran, with its seed and, after "run --swarm", its fault subset). --invariant names the invariant that must keep
failing (default: the first that fails, preferring any over "faults").

Exit code 0: a minimal failing scenario was written; 2: bad input, or the run
does not fail (nothing to shrink); 3: a run could not be carried out, or the
shrink was interrupted (the smallest failing scenario found so far is
written).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxRuns < 1 {
				return &exitError{ExitUsage, fmt.Errorf("--max-runs %d: want at least 1 (the first run counts)", maxRuns)}
			}
			tuneGCForRuns() // a shrink replays the scenario hundreds of times
			path, fromRun := args[0], false
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				// A run directory: its scenario.yaml is the scenario as
				// it ran, seed and (for run --swarm) fault subset included.
				path, fromRun = filepath.Join(path, bundle.ScenarioFile), true
				if swarm {
					return &exitError{ExitUsage, fmt.Errorf("%s is a run directory: its scenario already holds the faults its run had; drop --swarm", args[0])}
				}
			}
			s, err := scenarios.Load(path)
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			if cmd.Flags().Changed("seed") {
				s.Seed = seed
			}
			stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
			origin := fmt.Sprintf("%s (scenario %s), seed %d", args[0], s.Name, s.Seed)
			if fromRun {
				origin = fmt.Sprintf("the run in %s (scenario %s), seed %d", args[0], s.Name, s.Seed)
			}
			if swarm {
				sub, on := sweep.Swarm(s, s.Seed)
				origin += ", with --swarm: " + sweep.DescribeSubset(s, on)
				s = sub
			}
			if out == "" {
				out = filepath.Join("runs", fmt.Sprintf("%s-seed%d-shrunk.yaml", s.Name, s.Seed))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o := shrink.Options{Invariant: inv, MaxRuns: maxRuns, Run: virtual.Verdict}
			if !quiet {
				o.Progress = stderr
			}
			r, err := shrink.Shrink(ctx, s, o)
			if errors.Is(err, shrink.ErrNothingToShrink) {
				fmt.Fprintf(stdout, "%v\n", err)
				return &exitError{ExitUsage, nil}
			}
			if errors.Is(err, shrink.ErrUnknownInvariant) {
				return &exitError{ExitUsage, err}
			}
			if err != nil {
				return &exitError{ExitRunFailed, err}
			}
			doc, err := r.Document(origin, out)
			if err == nil {
				err = os.MkdirAll(filepath.Dir(out), 0o755)
			}
			if err == nil {
				err = os.WriteFile(out, doc, 0o644)
			}
			if err != nil {
				return &exitError{ExitRunFailed, fmt.Errorf("writing the minimal scenario: %w", err)}
			}
			fmt.Fprintf(stdout, "shrunk %s\nin %d runs (%.2fs), %d reductions kept:\n", origin, r.Runs, r.Elapsed.Seconds(), r.Kept)
			fmt.Fprintf(stdout, "  before: %s\n  after:  %s\n", r.Before, r.After)
			fmt.Fprintf(stdout, "  still fails %s: %s\n", r.Invariant, r.Detail)
			fmt.Fprintf(stdout, "wrote %s\n", out)
			// Replay the file as the user will, to prove it fails.
			back, err := scenarios.Load(out)
			if err != nil {
				return &exitError{ExitRunFailed, fmt.Errorf("the written scenario does not load: %w", err)}
			}
			res, err := virtual.Run(back, virtual.Options{})
			if err != nil {
				return &exitError{ExitRunFailed, fmt.Errorf("replaying %s: %w", out, err)}
			}
			replayed := false
			for _, x := range res.Summary.Invariants {
				replayed = replayed || (x.Name == r.Invariant && !x.Passed)
			}
			if !replayed || res.TraceHash != r.TraceHash {
				return &exitError{ExitRunFailed, fmt.Errorf("driftlab bug: replaying %s does not reproduce the shrunk run (fails %s: %v, trace hash %s, want %s)", out, r.Invariant, replayed, res.TraceHash, r.TraceHash)}
			}
			fmt.Fprintf(stdout, "checked: replaying it fails %s again (trace hash %.12s)\n", r.Invariant, res.TraceHash)
			fmt.Fprintf(stdout, "replay: %s\n", shrink.ReplayCommand(back.Seed, out))
			switch {
			case r.Interrupted:
				return &exitError{ExitRunFailed, fmt.Errorf("interrupted after %d runs; %s holds the smallest failing scenario found so far", r.Runs, out)}
			case r.Exhausted:
				fmt.Fprintf(stdout, "note: the run budget (--max-runs %d) ended the search; a larger budget may shrink further\n", r.Runs)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&seed, "seed", 0, "override the scenario's seed")
	f.BoolVar(&swarm, "swarm", false, "start from the faults this seed switches on in a swarm sweep")
	f.StringVar(&out, "out", "", "where to write the minimal scenario (default runs/<scenario>-seed<N>-shrunk.yaml)")
	f.StringVar(&inv, "invariant", "", "the invariant that must keep failing (default: the first failing one)")
	f.IntVar(&maxRuns, "max-runs", shrink.DefaultMaxRuns, "at most this many runs")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress line per run")
	return cmd
}

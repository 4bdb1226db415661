package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/sim/bundle"
)

func init() { commands = append(commands, newReplayCmd) }

func newReplayCmd() *cobra.Command {
	var (
		out, backend, apiserver string
		quiet                   bool
		rf                      reportFlags
	)
	cmd := &cobra.Command{
		Use:   "replay [flags] BUNDLE",
		Short: "Re-execute a recorded run from its bundle and compare",
		Long: `Re-execute the run recorded in a bundle (a run directory with manifest.json):
the same resolved scenario and seed, so the same workload operations and the
same fault schedule. The bundle is verified first; a modified, truncated or
incomplete-listed file is refused with an error naming it.

On the virtual backend the trace hash must match the recorded one exactly
("trace hash matches"). On the local backend the replay is compared with the
recording: invariant outcomes and latency percentiles, with the differences.
The replay writes a bundle of its own (--out).

Exit code 0: reproduced (same trace hash, or the same verdicts); 1: the
replay differs; 2: bad input (a bundle that fails verification, or an
incomplete one: its run was killed and left no outcome to compare with);
3: the run failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := bundle.Open(args[0])
			if err != nil {
				return &exitError{ExitUsage, fmt.Errorf("refusing to replay: %w", err)}
			}
			m := b.Manifest
			s, err := b.Scenario()
			if err != nil {
				return &exitError{ExitUsage, fmt.Errorf("refusing to replay: %w", err)}
			}
			if backend == "" {
				backend = m.Backend
			}
			runBackend, ok := backends[backend]
			if !ok {
				return &exitError{ExitUsage, fmt.Errorf("backend %q is not available in this version (available: %s)", backend, strings.Join(backendNames(), ", "))}
			}
			if out == "" {
				out = defaultOut(s.Name, "-replay")
			}
			if abs, _ := filepath.Abs(out); abs == mustAbs(b.Dir) {
				return &exitError{ExitUsage, errors.New("--out must not be the recorded bundle")}
			}
			stderr := cmd.ErrOrStderr()
			if m.Status != bundle.StatusComplete {
				fmt.Fprintf(stderr, "driftlab: note: the recorded run is %s", m.Status)
				if m.Error != "" {
					fmt.Fprintf(stderr, " (%s)", m.Error)
				}
				fmt.Fprintln(stderr)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var progress io.Writer = stderr
			if quiet {
				progress = nil
			}
			fmt.Fprintf(stderr, "driftlab: replaying %s (scenario %s, seed %d, recorded on %s by driftlab %s) on the %s backend into %s\n",
				b.Dir, s.Name, s.Seed, m.Backend, m.Versions.Driftlab, backend, out)
			sum, runErr := runBundled(runRequest{Ctx: ctx, Scenario: s, Out: out, KubeAPIServer: apiserver, Progress: progress, Log: stderr},
				backend, runBackend, rf, commandLine(cmd, args))
			var ee *exitError
			if errors.As(runErr, &ee) {
				return runErr
			}
			if sum != nil && !quiet {
				sum.Print(cmd.OutOrStdout())
			}
			if runErr != nil {
				return &exitError{ExitRunFailed, fmt.Errorf("replay failed (artifacts kept in %s): %w", out, runErr)}
			}
			if m.Status == bundle.StatusIncomplete {
				return &exitError{ExitUsage, fmt.Errorf("the recorded bundle %s is incomplete: its run never finished (killed, or still running), so it has no outcome; the replay ran into %s but has nothing to be compared with", b.Dir, out)}
			}
			recorded, err := b.Summary()
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "\nnothing to compare with: %v\n", err)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreplay of %s (%s backend) against the recording (%s backend):\n", b.Dir, backend, m.Backend)
			c := bundle.Compare(recorded, sum)
			c.RecordedOps, c.NewOps, c.SameOps = compareOps(b.Path(bundle.OpsFile), filepath.Join(out, bundle.OpsFile))
			c.RecordedFaults, _ = b.Faults()
			c.NewFaults, _ = (&bundle.Bundle{Dir: out}).Faults()
			if recorded.Backend != sum.Backend {
				c.TraceHashesCompared = false // different backends: compare verdicts only
			}
			c.Print(cmd.OutOrStdout())
			switch {
			case c.TraceHashesCompared && !c.TraceHashMatches:
				if now := bundle.CurrentVersions("").Driftlab; now != m.Versions.Driftlab {
					fmt.Fprintf(cmd.OutOrStdout(), "note: recorded by driftlab %s, replayed by %s: a change of the model changes the hash\n", m.Versions.Driftlab, now)
				}
				return &exitError{ExitFailed, nil}
			case !c.Reproduced():
				fmt.Fprintln(cmd.OutOrStdout(), "\nthe replay's verdicts differ from the recording")
				return &exitError{ExitFailed, nil}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nreproduced: the replay gives the recorded verdicts")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "run directory of the replay (default runs/<scenario>-replay-<time>)")
	f.StringVar(&backend, "backend", "", "backend (default: the recorded run's)")
	f.StringVar(&apiserver, "kube-apiserver", "", "kube-apiserver binary (default: $KUBEBUILDER_ASSETS or bin/k8s/*/)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines and no run summary; only the comparison")
	rf.register(f)
	return cmd
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// compareOps compares two ops.jsonl files (the generated workload) line by
// line; -1 counts when a file is absent.
func compareOps(recorded, replayed string) (int, int, bool) {
	a, errA := os.ReadFile(recorded)
	b, errB := os.ReadFile(replayed)
	if errA != nil || errB != nil {
		return -1, -1, false
	}
	return bytes.Count(a, []byte("\n")), bytes.Count(b, []byte("\n")), bytes.Equal(a, b)
}

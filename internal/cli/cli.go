package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/sweep"
	"github.com/driftlab/driftlab/sim/virtual"
)

// Exit codes.
const (
	ExitOK        = 0 // the run passed
	ExitFailed    = 1 // an invariant failed
	ExitUsage     = 2 // bad command line or scenario
	ExitRunFailed = 3 // the run itself could not complete
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the CLI with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != ExitFailed {
			fmt.Fprintln(stderr, "driftlab:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "driftlab:", err)
	return ExitUsage
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "driftlab",
		Short: "Deterministic simulation and chaos testbed for Kubernetes operators",
		Long: `driftlab runs a reference Kubernetes operator against a real control plane
(embedded etcd + envtest kube-apiserver) under a scenario's workload and faults,
and checks state-drift and latency invariants.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newSweepCmd(), newOperatorCmd(), newScenariosCmd())
	return root
}

func newRunCmd() *cobra.Command {
	var (
		out, backend, apiserver string
		seed                    uint64
		quiet                   bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] SCENARIO.yaml",
		Short: "Run a scenario and check its invariants",
		Long: `Run a scenario (a YAML file, or the name of a built-in one such as "baseline")
and check its invariants. Writes summary.json, history.jsonl, latency.hlog and
the logs into the run directory. Exit code 0: all invariants passed; 1: an
invariant failed; 2: bad input; 3: the run itself failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := scenarios.Load(args[0])
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			if cmd.Flags().Changed("seed") {
				s.Seed = seed
			}
			if backend == "" {
				backend = s.Backend
			}
			if backend != "local" && backend != "virtual" {
				return &exitError{ExitUsage, fmt.Errorf("backend %q is not available in this version (available: local, virtual)", backend)}
			}
			if out == "" {
				out = filepath.Join("runs", fmt.Sprintf("%s-%s", s.Name, time.Now().Format("20060102-150405")))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var progress io.Writer = cmd.ErrOrStderr()
			if quiet {
				progress = nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: running scenario %s (seed %d) on the %s backend into %s\n", s.Name, s.Seed, backend, out)
			var sum *report.Summary
			if backend == "virtual" {
				res, verr := virtual.Run(s, virtual.Options{Dir: out})
				err = verr
				if res != nil {
					sum = res.Summary
					fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: %d events, %.1fs simulated\n", res.Events, res.SimTime.Seconds())
				}
			} else {
				sum, err = local.Run(ctx, s, local.RunOptions{Dir: out, KubeAPIServer: apiserver, Progress: progress})
			}
			if sum != nil {
				sum.Print(cmd.OutOrStdout())
			}
			switch {
			case err != nil:
				return &exitError{ExitRunFailed, fmt.Errorf("run failed (artifacts kept in %s): %w", out, err)}
			case !sum.Passed:
				return &exitError{ExitFailed, nil}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "run directory (default runs/<scenario>-<time>)")
	f.Uint64Var(&seed, "seed", 0, "override the scenario's seed")
	f.StringVar(&backend, "backend", "", "backend: local or virtual (default: the scenario's)")
	f.StringVar(&apiserver, "kube-apiserver", "", "kube-apiserver binary (default: $KUBEBUILDER_ASSETS or bin/k8s/*/)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	return cmd
}

func newOperatorCmd() *cobra.Command {
	var (
		kubeconfig, cache, metrics, events, owner string
		commands                                  bool
		bugList                                   []string
	)
	cmd := &cobra.Command{
		Use:   "operator --kubeconfig FILE",
		Short: "Run the reference operator (the harness starts it in its own process)",
		Long: fmt.Sprintf(`Run the reference KVCluster operator in a controller-runtime manager until
SIGTERM. The harness starts it this way during a run; it can also be run by
hand against any cluster that has the KVCluster CRD.

Cache variants: %s.
Seeded bugs (off by default):
%s`, strings.Join(statecache.Variants(), ", "), bugHelp()),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return &exitError{ExitUsage, fmt.Errorf("loading kubeconfig: %w", err)}
			}
			cfg.QPS, cfg.Burst = 100, 200
			var ev io.Writer
			switch events {
			case "":
			case "-":
				ev = cmd.OutOrStdout()
			default:
				f, err := os.Create(events)
				if err != nil {
					return &exitError{ExitUsage, err}
				}
				defer f.Close()
				ev = f
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := operator.Options{Cache: cache, Bugs: bugList, MetricsAddr: metrics, Events: ev, FieldOwner: owner, Log: cmd.ErrOrStderr()}
			if commands {
				opts.Commands = cmd.InOrStdin()
			}
			err = operator.Run(ctx, cfg, opts)
			if err != nil {
				return &exitError{ExitRunFailed, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to manage (default: in-cluster or $KUBECONFIG)")
	f.StringVar(&cache, "cache", "map", "member state cache variant")
	f.StringSliceVar(&bugList, "bug", nil, "seeded bug to switch on (repeatable)")
	f.StringVar(&metrics, "metrics-bind-address", "127.0.0.1:0", "metrics endpoint address (\"0\" disables)")
	f.StringVar(&events, "events", "", "write history records as JSON lines to FILE, or - for standard output")
	f.StringVar(&owner, "field-owner", "", "field manager of status writes (default driftlab-operator)")
	f.BoolVar(&commands, "commands", false, "read harness commands (JSON lines) from standard input: runtime faults, runtime samples")
	return cmd
}

func bugHelp() string {
	var b strings.Builder
	for _, n := range bugs.Names() {
		fmt.Fprintf(&b, "  %-16s %s\n", n, bugs.Table[n])
	}
	return b.String()
}

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

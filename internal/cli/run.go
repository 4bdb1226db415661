package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newRunCmd) }

func newRunCmd() *cobra.Command {
	var (
		out, backend, apiserver string
		seed                    uint64
		quiet                   bool
		rf                      reportFlags
		auditLog                string
		swarm                   bool
		cf                      clusterFlags // backend_cluster.go
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
			if swarm {
				s = swarmSubset(cmd.ErrOrStderr(), s) // sweep.go
			}
			if backend == "" {
				backend = s.Backend
			}
			runBackend, ok := backends[backend]
			if !ok {
				return &exitError{ExitUsage, fmt.Errorf("backend %q is not available in this version (available: %s)", backend, strings.Join(backendNames(), ", "))}
			}
			if out == "" {
				out = defaultOut(s.Name, "")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var progress io.Writer = cmd.ErrOrStderr()
			if quiet {
				progress = nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: running scenario %s (seed %d) on the %s backend into %s\n", s.Name, s.Seed, backend, out)
			// The run bundle (runbundle.go) wraps the backend: begun before, finished after, also on error or Ctrl-C.
			sum, err := runBundled(runRequest{Ctx: ctx, Scenario: s, Out: out, KubeAPIServer: apiserver, Progress: progress, Log: cmd.ErrOrStderr(), AuditLog: auditLog, Cluster: cf},
				backend, runBackend, rf, commandLine(cmd, args))
			var ee *exitError
			if errors.As(err, &ee) {
				return err
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
	f.StringVar(&backend, "backend", "", "backend: local, virtual or cluster (default: the scenario's)")
	f.StringVar(&apiserver, "kube-apiserver", "", "kube-apiserver binary (default: $KUBEBUILDER_ASSETS or bin/k8s/*/)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	rf.register(f)
	f.StringVar(&auditLog, "audit-log", "", "local backend: kube-apiserver writes an audit log of the subject kind's requests to this file (relative to --out), for driftlab import audit")
	f.BoolVar(&swarm, "swarm", false, "run only the faults this seed switches on, as driftlab sweep --swarm does")
	cf.register(f)
	return cmd
}

// runRequest is what a backend needs to run one scenario from the CLI.
type runRequest struct {
	Ctx           context.Context
	Scenario      *scenarios.Scenario
	Out           string    // run directory
	KubeAPIServer string    // kube-apiserver binary (local backend)
	Progress      io.Writer // progress lines; nil when --quiet
	Log           io.Writer // one-line notes for the user (standard error)
	AuditLog      string    // local backend: audit log path (RunOptions.AuditLog)

	// Cluster holds the cluster backend's flags (backend_cluster.go).
	Cluster clusterFlags

	// Bundle is the run's bundle (set by runBundled), for a backend that
	// can tell it about the history it wrote (UseHistory).
	Bundle *bundle.Writer
}

// backends maps a backend name to the function that runs a scenario on it.
// A backend's file adds itself in an init function.
var backends = map[string]func(runRequest) (*report.Summary, error){
	"local": func(r runRequest) (*report.Summary, error) {
		sys, err := systemFor(r.Scenario)
		if err != nil {
			return nil, err
		}
		return local.Run(r.Ctx, r.Scenario, local.RunOptions{Dir: r.Out, System: sys, KubeAPIServer: r.KubeAPIServer, Progress: r.Progress, AuditLog: r.AuditLog})
	},
	"virtual": func(r runRequest) (*report.Summary, error) {
		res, err := virtual.Run(r.Scenario, virtual.Options{Dir: r.Out, Context: r.Ctx})
		if res == nil {
			return nil, err
		}
		if r.Bundle != nil && res.History != nil {
			r.Bundle.UseHistory(res.History) // Ctrl-C late in a long soak: no reading it again
		}
		fmt.Fprintf(r.Log, "driftlab: %d events, %.1fs simulated\n", res.Events, res.SimTime.Seconds())
		return res.Summary, err
	},
}

// systemFor is the operator a scenario tests: the reference operator (this
// binary's operator subcommand) when it declares no subject, else the one
// it declares. A scenario that declares a subject but no way to run its
// operator is bad input.
func systemFor(s *scenarios.Scenario) (*harness.System, error) {
	if s.Reference() {
		sys, err := operator.System(s)
		if err != nil {
			return nil, err
		}
		return sys, nil
	}
	sys, err := harness.FromScenario(s)
	if err != nil {
		return nil, &exitError{ExitUsage, err}
	}
	return &sys, nil
}

// backendNames lists the registered backends in sorted order.
func backendNames() []string {
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

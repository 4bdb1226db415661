package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/driftlab/driftlab/operator/matrix"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newMatrixCmd) }

func newMatrixCmd() *cobra.Command {
	var (
		backend, out, dir, apiserver string
		seeds, cleanSeeds, workers   int
		scens, bugList, variants     []string
		skipClean, cleanOnly         bool
	)
	cmd := &cobra.Command{
		Use:   "matrix [--backend virtual|local] [--seeds N] [--scenarios a,b] [--json FILE]",
		Short: "Run every seeded bug against the scenario catalogue: which scenario catches which bug",
		Long: `Run every seeded bug of the reference operator against the scenario catalogue,
over seeds from each scenario's own upwards until a judged invariant fails,
and the correct operator with every cache variant over the same scenarios.
Prints bug x scenario ("k:CSL": caught at the k-th seed by drift-convergence,
drift-staleness, latency; "-": not caught) and cache x scenario (seeds with a
violation / seeds). Judged: drift-convergence, drift-staleness and latency,
except invariants a scenario is built to fail (incident-watch-lag: latency);
the "faults" check is not judged. A bug the backend cannot express
(lock-across-io on virtual: a virtual reconcile never blocks) is shown as
"n/a" with the reason and not run. Exit code 1 when a bug goes uncaught, the
correct operator raises a violation or a run fails; progress on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkWorkers(workers); err != nil {
				return err
			}
			o := matrix.Options{Backend: backend, Seeds: seeds, CleanSeeds: cleanSeeds, Workers: workers,
				Bugs: bugList, Variants: variants, SkipClean: skipClean, SkipBugs: cleanOnly, KubeAPIServer: apiserver, Progress: cmd.ErrOrStderr()}
			for _, name := range scens {
				s, err := scenarios.Load(name)
				if err != nil {
					return &exitError{ExitUsage, err}
				}
				o.Scenarios = append(o.Scenarios, s)
			}
			if backend == matrix.BackendLocal {
				if dir == "" {
					dir = defaultOut("matrix", "")
				}
				o.Dir = dir
				fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: local runs go into %s\n", dir)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := matrix.Run(ctx, o)
			if res == nil {
				return &exitError{ExitUsage, err}
			}
			res.Print(cmd.OutOrStdout())
			if out != "" {
				if werr := res.WriteJSON(out); werr != nil {
					return &exitError{ExitRunFailed, werr}
				}
			}
			switch {
			case err != nil:
				return &exitError{ExitRunFailed, err}
			case !res.OK():
				return &exitError{ExitFailed, nil}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&backend, "backend", matrix.BackendVirtual, "backend: virtual or local")
	f.IntVar(&seeds, "seeds", 0, "most seeds per bug and scenario (default 100 virtual, 1 local)")
	f.IntVar(&cleanSeeds, "clean-seeds", 0, "seeds per cache variant and scenario for the correct operator (default --seeds)")
	f.StringSliceVar(&scens, "scenarios", nil, "scenario files or built-in names (default: every built-in; local: "+fmt.Sprint(matrix.LocalScenarios)+")")
	f.StringSliceVar(&bugList, "bugs", nil, "seeded bugs to try (default all)")
	f.StringSliceVar(&variants, "caches", nil, "cache variants for the correct operator (default all)")
	f.BoolVar(&skipClean, "skip-clean", false, "do not run the correct operator")
	f.BoolVar(&cleanOnly, "clean-only", false, "run only the correct operator (no seeded bugs)")
	f.IntVar(&workers, "workers", 0, "parallel virtual runs (default: all cores)")
	f.StringVar(&out, "json", "", "also write the matrix as JSON to this file")
	f.StringVar(&dir, "dir", "", "where local runs keep their directories (default runs/matrix-<time>)")
	f.StringVar(&apiserver, "kube-apiserver", "", "kube-apiserver binary for local runs")
	return cmd
}

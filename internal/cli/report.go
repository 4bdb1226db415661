package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/htmlreport"
)

func init() { commands = append(commands, newReportCmd) }

func newReportCmd() *cobra.Command {
	var (
		out        string
		screenshot bool
	)
	cmd := &cobra.Command{
		Use:   "report [flags] BUNDLE",
		Short: "Write report.html for a run directory",
		Long: `Regenerate report.html for a run directory (a bundle): a static page that
works offline, with latency over time (fault windows shaded, the SLO drawn),
percentiles inside vs outside fault windows, a timeline of operations, status
writes and violations, the invariants and the key metrics. The bundle is
verified first; a bundle that fails verification still gets its report, with
a warning. --screenshot also renders the page in headless Chromium into
report.png.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if _, err := bundle.Open(dir); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "driftlab: warning: %v\n", err)
			}
			page, err := htmlreport.Write(dir, htmlreport.Options{Out: out})
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), page)
			if screenshot {
				png := filepath.Join(filepath.Dir(page), bundle.ScreenshotFile)
				if err := htmlreport.Screenshot(context.Background(), page, png, 1280, 0); err != nil {
					return &exitError{ExitRunFailed, err}
				}
				fmt.Fprintln(cmd.OutOrStdout(), png)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the page (default BUNDLE/report.html)")
	cmd.Flags().BoolVar(&screenshot, "screenshot", false, "also write report.png next to the page (headless Chromium)")
	return cmd
}

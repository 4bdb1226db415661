package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/htmlreport"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
)

// reportFlags are the report.html flags of run and replay.
type reportFlags struct {
	noReport   bool
	screenshot bool
}

func (r *reportFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&r.noReport, "no-report", false, "do not write report.html into the run directory")
	f.BoolVar(&r.screenshot, "screenshot", false, "also keep a PNG of report.html (report.png, headless Chromium)")
}

// commandLine reconstructs the command line of cmd for the manifest.
func commandLine(cmd *cobra.Command, args []string) []string {
	out := strings.Fields(cmd.CommandPath())
	cmd.Flags().Visit(func(f *pflag.Flag) { out = append(out, "--"+f.Name+"="+f.Value.String()) })
	return append(out, args...)
}

// runBundled runs a backend inside a run bundle: the bundle is begun before
// the backend starts (scenario.yaml, an "incomplete" manifest) and finished
// after it returns, whatever happened (complete, failed, interrupted), then
// report.html is written unless rf says not to. Problems writing the bundle
// or the report are reported on req.Log; only a bundle that cannot be begun
// stops the run.
func runBundled(req runRequest, backend string, run func(runRequest) (*report.Summary, error), rf reportFlags, command []string) (*report.Summary, error) {
	apiserver := ""
	if backend == "local" {
		apiserver = req.KubeAPIServer
		if apiserver == "" {
			apiserver, _ = local.FindKubeAPIServer()
		}
	}
	if err := checkOut(req.Out, req.Scenario); err != nil {
		return nil, err
	}
	bw, err := bundle.Begin(req.Out, req.Scenario, backend, bundle.CurrentVersions(apiserver), command)
	var de *bundle.DirError
	if errors.As(err, &de) {
		return nil, &exitError{ExitUsage, fmt.Errorf("--out %s: %w", req.Out, de.Err)}
	}
	if err != nil {
		return nil, &exitError{ExitRunFailed, fmt.Errorf("starting the run bundle in %s: %w", req.Out, err)}
	}
	req.Bundle = bw
	sum, runErr := run(req)
	interrupted := req.Ctx.Err() != nil
	if ferr := bw.Finish(sum, runErr, interrupted); ferr != nil {
		fmt.Fprintf(req.Log, "driftlab: warning: finishing the bundle in %s: %v\n", req.Out, ferr)
	}
	if !rf.noReport {
		writeReport(context.WithoutCancel(req.Ctx), req.Out, rf.screenshot, req)
	}
	return sum, runErr
}

// maxNameBytes is the longest file name the usual file systems take.
const maxNameBytes = 255

// checkOut refuses a run directory whose name is too long to be made: as a
// field error on the scenario's name when the name is what makes it too
// long (the default runs/<name>-<time>), else as a usage error on --out.
func checkOut(out string, s *scenarios.Scenario) error {
	base := filepath.Base(out)
	if len(base) <= maxNameBytes {
		return nil
	}
	if s.Name != "" && strings.Contains(base, s.Name) && len(base)-len(s.Name) < maxNameBytes {
		room := maxNameBytes - (len(base) - len(s.Name))
		return &exitError{ExitUsage, scenarios.FieldErrorAt(s, "name", fmt.Sprintf(
			"%d bytes is too long to name the run directory %s (at most %d bytes here); shorten it or pass --out", len(s.Name), filepath.Join(filepath.Dir(out), "<name>"+strings.TrimPrefix(base, s.Name)), room))}
	}
	return &exitError{ExitUsage, fmt.Errorf("--out %s: the last element is %d bytes, more than the %d a file name may have", out, len(base), maxNameBytes)}
}

// maxReportHistory is the largest history.jsonl a run writes report.html
// for by itself: the report reads the whole history, so a long virtual
// soak, which streams its history to the file, would otherwise take
// gigabytes at its very end.
const maxReportHistory = 64 << 20

// writeReport writes report.html (and report.png) for a run directory,
// reporting problems on req.Log without failing the run.
func writeReport(ctx context.Context, dir string, screenshot bool, req runRequest) {
	st, err := os.Stat(filepath.Join(dir, bundle.HistoryFile))
	if err != nil {
		fmt.Fprintf(req.Log, "driftlab: no report.html: the run left no %s\n", bundle.HistoryFile)
		return
	}
	if st.Size() > maxReportHistory {
		fmt.Fprintf(req.Log, "driftlab: no report.html: %s is %d MB, and the report holds the whole history in memory (about 7 bytes per byte of it); \"driftlab report %s\" writes it\n",
			bundle.HistoryFile, st.Size()>>20, dir)
		return
	}
	page, err := htmlreport.Write(dir, htmlreport.Options{})
	if err != nil {
		fmt.Fprintf(req.Log, "driftlab: warning: report.html not written: %v\n", err)
		return
	}
	fmt.Fprintf(req.Log, "driftlab: report: %s\n", page)
	if screenshot {
		png := filepath.Join(dir, bundle.ScreenshotFile)
		if err := htmlreport.Screenshot(ctx, page, png, 1280, 0); err != nil {
			fmt.Fprintf(req.Log, "driftlab: warning: screenshot not taken: %v\n", err)
			return
		}
		fmt.Fprintf(req.Log, "driftlab: screenshot: %s\n", png)
	}
}

// defaultOut is the run directory used when --out is not given.
func defaultOut(name, suffix string) string {
	return filepath.Join("runs", fmt.Sprintf("%s%s-%s", name, suffix, time.Now().Format("20060102-150405")))
}

package htmlreport

import (
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
)

// virtualBundle runs a built-in scenario on the virtual backend into a
// bundle, then appends a fault window to its history, as the local backend
// would record one.
func virtualBundle(t testing.TB, name string, bugs ...string) string {
	t.Helper()
	return virtualBundleWith(t, name, nil, bugs...)
}

// virtualBundleWith is virtualBundle with extra records appended after the
// fault window's.
func virtualBundleWith(t testing.TB, name string, extra []history.Record, bugs ...string) string {
	t.Helper()
	s, err := scenarios.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	s.Operator.Bugs = bugs
	dir := t.TempDir()
	w, err := bundle.Begin(dir, s, "virtual", bundle.CurrentVersions(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := virtual.Run(s, virtual.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, bundle.HistoryFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, r := range append([]history.Record{
		{T: 5 * time.Second, Source: history.SourceHarness, Kind: history.KindFaultStart, Op: "wal-fsync-delay", Detail: "0"},
		{T: 12 * time.Second, Source: history.SourceHarness, Kind: history.KindFaultStop, Op: "wal-fsync-delay", Detail: "0", Metrics: map[string]float64{"fsyncs_delayed": 7}},
	}, extra...) {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if err := w.Finish(res.Summary, nil, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReportIsStaticWithThreePlots(t *testing.T) {
	dir := virtualBundle(t, "baseline")
	page, err := Write(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if n := strings.Count(html, `<svg class="plot"`); n != 3 {
		t.Fatalf("%d plots, want 3", n)
	}
	// Offline: nothing is loaded from elsewhere.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).FindString(html); m != "" {
		t.Fatalf("the page loads something from the network: %q", m)
	}
	for _, want := range []string{"baseline", "drift-convergence", "in fault 0 wal-fsync-delay", "fault window", "SLO p99 ≤ 1s", "fsyncs_delayed=7", "manifest", "PASS"} {
		if !strings.Contains(html, want) && !(want == "manifest" && strings.Contains(html, "Bundle files")) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// The timeline shows the operator's lost watches and relists, the
// mechanism behind a lag, on their own row; a run without them shows none.
func TestReportTimelineShowsLostWatchesAndRelists(t *testing.T) {
	page := func(extra []history.Record) string {
		p, err := Write(virtualBundleWith(t, "baseline", extra), Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	with := page([]history.Record{
		{T: 7 * time.Second, Source: history.SourceOperator, Kind: history.KindWatchEnd, Resource: "pods", Op: "connection-lost", Err: "http2: client connection lost"},
		{T: 8 * time.Second, Source: history.SourceOperator, Kind: history.KindRelist, Resource: "pods", Op: "list"},
		{T: 9 * time.Second, Source: history.SourceOperator, Kind: history.KindWatchEnd, Resource: "pods", Op: "timeout"},
	})
	for _, want := range []string{"watch lost / relist", "operator informer relisted (1)", "operator watch ended early"} {
		if !strings.Contains(with, want) {
			t.Errorf("report of a run with a lost watch and a relist lacks %q", want)
		}
	}
	without := page(nil)
	for _, not := range []string{"informer relisted", "watch ended early"} {
		if strings.Contains(without, not) {
			t.Errorf("report of a run without lost watches shows %q", not)
		}
	}
}

func TestReportShowsAFailingRun(t *testing.T) {
	dir := virtualBundle(t, "baseline", "freeze-status")
	page, err := Write(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(page)
	html := string(b)
	for _, want := range []string{`class="badge fail"`, "never reflected", "Invariant violations", "never converged",
		`id="operator">driftlab reference operator`, `id="subject">kv.driftlab.io/v1alpha1, Kind=KVCluster`} {
		if !strings.Contains(html, want) {
			t.Errorf("report of a frozen-status run lacks %q", want)
		}
	}
}

// TestReportInChromium loads the page in headless Debian Chromium: the
// plots must be laid out with a size (the page's own check counts them) and
// a screenshot must show more than a blank page.
func TestReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	if _, err := Chromium(); err != nil {
		t.Fatalf("%v: `make chromium` installs it; make test depends on it", err)
	}
	dir := virtualBundle(t, "baseline")
	page, err := Write(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pc, err := Check(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	if pc.SVGs < 3 || pc.PlotsRendered != 3 {
		t.Fatalf("chromium saw %d svg elements and %d rendered plots, want 3 plots", pc.SVGs, pc.PlotsRendered)
	}
	if len(pc.Console) > 0 {
		t.Fatalf("the page logged to the console (errors?):\n%s", strings.Join(pc.Console, "\n"))
	}
	// The check can fail: a page with a script error is
	// caught, and its plots do not count.
	broken := filepath.Join(dir, "broken.html")
	if err := os.WriteFile(broken, []byte(`<!DOCTYPE html><html><body><img src="missing.png"><script>undefinedFunction();</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	bc, err := Check(ctx, broken)
	if err != nil {
		t.Fatal(err)
	}
	if len(bc.Console) == 0 || bc.PlotsRendered != 0 {
		t.Fatalf("a broken page passed the check: console %q, plots %d", bc.Console, bc.PlotsRendered)
	}
	shot := filepath.Join(dir, bundle.ScreenshotFile)
	if err := Screenshot(ctx, page, shot, 1280, 2400); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Count distinct colours on a grid: a blank or broken page has a handful.
	colours := map[uint32]bool{}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y += 7 {
		for x := bd.Min.X; x < bd.Max.X; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|(b>>11)] = true
		}
	}
	if bd.Dx() != 1280 || len(colours) < 40 {
		t.Fatalf("screenshot %v with %d colours: looks blank", bd, len(colours))
	}
	if dst := os.Getenv("DRIFTLAB_TEST_ARTIFACTS"); dst != "" {
		_ = os.MkdirAll(dst, 0o755)
		data, _ := os.ReadFile(shot)
		_ = os.WriteFile(filepath.Join(dst, "report-baseline.png"), data, 0o644)
	}
}

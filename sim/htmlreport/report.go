package htmlreport

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// data is everything the page shows, read from a run directory.
type data struct {
	dir      string
	manifest *bundle.Manifest // nil: the run directory has no manifest
	scenario *scenarios.Scenario
	summary  *report.Summary // nil: the run left no summary
	records  []history.Record
	outcome  *invariant.Outcome
	faults   []bundle.ExecutedFault
	runEnd   float64 // seconds
	notes    []string
}

func load(dir string) (*data, error) {
	d := &data{dir: dir}
	f, err := os.Open(filepath.Join(dir, bundle.HistoryFile))
	if err != nil {
		return nil, fmt.Errorf("report: %w (is %s a run directory?)", err, dir)
	}
	d.records, err = history.Read(f)
	f.Close()
	if err != nil {
		// A run killed mid-write leaves a torn last line: show what is there.
		d.notes = append(d.notes, fmt.Sprintf("%s: %v; showing the %d records before it", bundle.HistoryFile, err, len(d.records)))
	}
	if b, err := os.ReadFile(filepath.Join(dir, bundle.ManifestFile)); err == nil {
		m := &bundle.Manifest{}
		if err := json.Unmarshal(b, m); err != nil {
			d.notes = append(d.notes, fmt.Sprintf("%s: %v", bundle.ManifestFile, err))
		} else {
			d.manifest = m
		}
	}
	switch s, err := scenarios.Load(filepath.Join(dir, bundle.ScenarioFile)); {
	case err == nil:
		d.scenario = s
	case errors.Is(err, fs.ErrNotExist):
		d.scenario = &scenarios.Scenario{Name: "(unknown)"}
		d.notes = append(d.notes, "no scenario.yaml: SLO thresholds unknown")
	default:
		return nil, fmt.Errorf("report: %w", err)
	}
	if s, err := report.ReadSummary(filepath.Join(dir, bundle.SummaryFile)); err == nil {
		d.summary = s
	} else if !errors.Is(err, fs.ErrNotExist) {
		d.notes = append(d.notes, err.Error())
	}
	d.outcome = invariant.Check(d.records, d.scenario.Invariants)
	d.faults = bundle.ExecutedFaults(d.records)
	for _, r := range d.records {
		d.runEnd = max(d.runEnd, r.T.Seconds())
	}
	return d, nil
}

// Options configure Write.
type Options struct {
	// Out is the page's path; default DIR/report.html.
	Out string
}

// Write reads the run directory dir and writes its report.html; it returns
// the page's path.
func Write(dir string, o Options) (string, error) {
	d, err := load(dir)
	if err != nil {
		return "", err
	}
	page, err := render(d)
	if err != nil {
		return "", err
	}
	out := o.Out
	if out == "" {
		out = filepath.Join(dir, bundle.ReportFile)
	}
	return out, os.WriteFile(out, page, 0o644)
}

//go:embed report.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(v float64) string {
		switch {
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v >= 10:
			return fmt.Sprintf("%.0f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	},
	"num": func(v float64) string {
		if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
			return fmt.Sprintf("%d", int64(v))
		}
		return fmt.Sprintf("%.4g", v)
	},
	"secs": func(ms float64) string { return fmt.Sprintf("%.1f s", ms/1000) },
}).Parse(pageTemplate))

type kv struct {
	Key   string
	Value float64
}

func sortedKV(m map[string]float64) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// scrapeRow is one metrics scrape, as deltas since the scrape before it.
type scrapeRow struct {
	T                                    float64 // seconds
	Tag                                  string
	FsyncMs, CommitMs, Puts, Slow, Watch string // etcd
	AssistMs, GCCycles, SchedP99, Slow1  string // operator runtime
}

func fmtMs(v float64) string {
	if v != v { // NaN: no events in the interval
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

// scrapeRows turns the history's metric scrapes into rows: etcd's WAL fsync
// and backend commit means, puts, slow watchers and watchers between
// scrapes; the operator's GC assist CPU, GC cycles and scheduling latency.
func scrapeRows(d *data) (etcd, rt []scrapeRow) {
	var prev map[string]float64
	mean := func(m map[string]float64, name string) float64 {
		dc := m[name+"_count"] - prev[name+"_count"]
		if dc <= 0 {
			return math.NaN()
		}
		return (m[name+"_sum"] - prev[name+"_sum"]) / dc * 1000
	}
	for _, r := range d.records {
		switch r.Kind {
		case history.KindEtcdMetrics:
			m := r.Metrics
			if prev == nil {
				prev = map[string]float64{}
			}
			etcd = append(etcd, scrapeRow{T: r.T.Seconds(), Tag: r.Detail,
				FsyncMs:  fmtMs(mean(m, "etcd_disk_wal_fsync_duration_seconds")),
				CommitMs: fmtMs(mean(m, "etcd_disk_backend_commit_duration_seconds")),
				Puts:     fmt.Sprintf("%.0f", m["etcd_mvcc_put_total"]-prev["etcd_mvcc_put_total"]),
				Slow:     fmt.Sprintf("%.0f", m["etcd_debugging_mvcc_slow_watcher_total"]),
				Watch:    fmt.Sprintf("%.0f", m["etcd_debugging_mvcc_watcher_total"])})
			prev = m
		case history.KindRuntime:
			m := r.Metrics
			rt = append(rt, scrapeRow{T: r.T.Seconds(), Tag: r.Detail,
				AssistMs: fmt.Sprintf("%.2f", m["gc_assist_cpu_seconds"]*1000),
				GCCycles: fmt.Sprintf("%.0f", m["gc_cycles"]),
				SchedP99: fmt.Sprintf("%.2f", m["sched_latency_p99_seconds"]*1000),
				Slow1:    fmt.Sprintf("%.0f", m["sched_slow_events"])})
		}
	}
	return etcd, rt
}

type plotView struct {
	ID, Title, Caption string
	SVG                template.HTML
	Legend             []legendItem
}

type faultView struct {
	bundle.ExecutedFault
	Schedule string
	Window   *invariant.WindowLatency
	Effect   []kv
	// Plane is what the control plane and the operator's watches did in
	// the window (summary.json's plane), next to the latency it explains.
	Plane []kv
}

// planeKV flattens a PlaneStats into keys and values, the watch ends by
// cause as operator_watch_ends.<cause>.
func planeKV(p *report.PlaneStats) []kv {
	if p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	out := map[string]float64{}
	for k, v := range m {
		if p.Samples == 0 && !strings.HasPrefix(k, "operator_") {
			continue // no plane samples (virtual backend): only the operator's watches
		}
		switch x := v.(type) {
		case float64:
			out[k] = x
		case map[string]any:
			for c, n := range x {
				if f, ok := n.(float64); ok {
					out[k+"."+c] = f
				}
			}
		}
	}
	return sortedKV(out)
}

type pageView struct {
	Title, Scenario, Description, Backend, Status, Verdict, VerdictClass string
	Operator, Subject                                                    string
	Seed                                                                 uint64
	Manifest                                                             *bundle.Manifest
	Summary                                                              *report.Summary
	Invariants                                                           []invariant.Result
	Latency, Outside                                                     invariant.LatencyStats
	HasFaults                                                            bool
	Faults                                                               []faultView
	PlaneOutside                                                         []kv
	Metrics                                                              []kv
	Counts                                                               []kv
	Plots                                                                []plotView
	Notes                                                                []string
	Violations                                                           []invariant.Violation
	MoreViolations                                                       int
	Files                                                                []bundle.File
	TraceHash                                                            string
	EtcdScrapes, RuntimeScrapes                                          []scrapeRow
}

func render(d *data) ([]byte, error) {
	v := pageView{Scenario: d.scenario.Name, Description: d.scenario.Description, Seed: d.scenario.Seed,
		Manifest: d.manifest, Summary: d.summary, Notes: d.notes, Latency: d.outcome.Latency, Outside: d.outcome.Outside,
		HasFaults: len(d.outcome.Windows) > 0 || len(d.faults) > 0}
	v.Title = "driftlab: " + v.Scenario
	// What was tested: the history's subject record says it for any run,
	// also one without a summary.
	v.Operator, v.Subject = d.outcome.Operator, d.outcome.Kind
	passed := d.outcome.Passed()
	v.Invariants = d.outcome.Results
	if d.summary != nil {
		v.Backend, v.Seed, v.TraceHash = d.summary.Backend, d.summary.Seed, d.summary.TraceHash
		if d.summary.Operator != "" {
			v.Operator, v.Subject = d.summary.Operator, d.summary.Subject
		}
		passed = d.summary.Passed
		v.Invariants = d.summary.Invariants
		v.Metrics = sortedKV(d.summary.Metrics)
		counts := map[string]float64{}
		for k, n := range d.summary.Counts {
			counts[k] = float64(n)
		}
		v.Counts = sortedKV(counts)
		if d.summary.Error != "" {
			v.Notes = append(v.Notes, "run error: "+d.summary.Error)
		}
	}
	if d.manifest != nil {
		v.Status = d.manifest.Status
		v.Backend = d.manifest.Backend
		v.Files = d.manifest.Files
		if d.manifest.Status != bundle.StatusComplete && d.manifest.Error != "" {
			v.Notes = append(v.Notes, d.manifest.Status+": "+d.manifest.Error)
		}
	}
	switch {
	case v.Status == bundle.StatusIncomplete || v.Status == bundle.StatusInterrupted || (d.summary == nil):
		v.Verdict, v.VerdictClass = "INCOMPLETE", "warn"
		if v.Status == bundle.StatusInterrupted {
			v.Verdict = "INTERRUPTED"
		}
	case passed:
		v.Verdict, v.VerdictClass = "PASS", "pass"
	default:
		v.Verdict, v.VerdictClass = "FAIL", "fail"
	}
	for _, f := range d.faults {
		fv := faultView{ExecutedFault: f, Effect: sortedKV(f.Effect)}
		if f.Index >= 0 && f.Index < len(d.scenario.Faults) {
			fv.Schedule = d.scenario.Faults[f.Index].Describe()
		}
		for i := range d.outcome.Windows {
			if d.outcome.Windows[i].Index == f.Index && f.Skipped == "" {
				fv.Window = &d.outcome.Windows[i]
			}
		}
		if d.summary != nil {
			for _, sf := range d.summary.Faults {
				if sf.Index == f.Index {
					fv.Plane = planeKV(sf.Plane)
				}
			}
		}
		v.Faults = append(v.Faults, fv)
	}
	if d.summary != nil {
		v.PlaneOutside = planeKV(d.summary.PlaneOutside)
	}
	v.EtcdScrapes, v.RuntimeScrapes = scrapeRows(d)
	const maxViolations = 50
	v.Violations = d.outcome.Violations
	if len(v.Violations) > maxViolations {
		v.MoreViolations = len(v.Violations) - maxViolations
		v.Violations = v.Violations[:maxViolations]
	}

	for _, pd := range []struct {
		id, title, caption string
		mk                 func(*data) (*plot.Plot, []legendItem, error)
	}{
		{"latency", "Latency over time", "Each point is one Pod: when it became Ready (x) and how long until a committed status reflected it (y). Shaded: fault windows. Red line: the SLO.", latencyPlot},
		{"percentiles", "Inside vs outside fault windows", "Percentiles of the samples that overlap each fault window, against the samples outside every window.", percentilePlot},
		{"timeline", "Timeline", "Workload operations, Pods becoming Ready, committed status writes, fault windows and the moments an invariant was broken.", timelinePlot},
	} {
		p, legend, err := pd.mk(d)
		if err != nil {
			return nil, fmt.Errorf("report: plot %s: %w", pd.id, err)
		}
		s, err := svg(p, pd.title)
		if err != nil {
			return nil, err
		}
		v.Plots = append(v.Plots, plotView{ID: pd.id, Title: pd.title, Caption: pd.caption, SVG: template.HTML(s), Legend: legend})
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

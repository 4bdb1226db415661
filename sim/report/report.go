package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
)

// Startup is how long the backend took to come up, in milliseconds.
type Startup struct {
	EtcdMs      float64 `json:"etcd_ms"`
	APIServerMs float64 `json:"apiserver_ms"`
	CRDsMs      float64 `json:"crds_ms,omitempty"`
	OperatorMs  float64 `json:"operator_ms,omitempty"`
	// The world (scenario world:): kube-controller-manager, kube-scheduler
	// and the simulated Nodes, which start side by side.
	KubeControllerManagerMs float64 `json:"kube_controller_manager_ms,omitempty"`
	KubeSchedulerMs         float64 `json:"kube_scheduler_ms,omitempty"`
	NodesMs                 float64 `json:"nodes_ms,omitempty"`
}

// Summary is summary.json: the result of one run.
type Summary struct {
	Scenario string `json:"scenario"`
	File     string `json:"file,omitempty"`
	Backend  string `json:"backend"`
	// Operator names the operator under test; Subject the kind it
	// reports on (group/version, Kind=...).
	Operator   string                 `json:"operator"`
	Subject    string                 `json:"subject"`
	Seed       uint64                 `json:"seed"`
	Passed     bool                   `json:"passed"`
	Invariants []invariant.Result     `json:"invariants"`
	Latency    invariant.LatencyStats `json:"latency"`
	// LatencyOutside is the latency of samples outside every fault window.
	LatencyOutside invariant.LatencyStats `json:"latency_outside_faults"`
	// Drift is how long cluster statuses disagreed with the truth during
	// the workload; DriftOutside the part outside every fault window.
	Drift        invariant.DriftStats `json:"drift"`
	DriftOutside invariant.DriftStats `json:"drift_outside_faults"`
	// Faults lists each fault: its window, its measured effect, and the
	// latency inside it; or why it was skipped.
	Faults []FaultResult `json:"faults"`
	// PlaneOutside is FaultResult.Plane for the time outside every fault
	// window, from the workload's start to convergence: the run's own
	// reference for the windows' figures.
	PlaneOutside *PlaneStats `json:"plane_outside_faults,omitempty"`
	Startup      Startup     `json:"startup"`
	// ConvergedAfterMs is how long after the workload the last cluster converged.
	ConvergedAfterMs float64 `json:"converged_after_ms"`
	// Metrics are key etcd and operator runtime figures over the workload
	// (etcd_wal_fsync_mean_ms, etcd_slow_watchers_peak,
	// operator_gc_assist_cpu_seconds, ...).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Counts of history records by kind (operations, pod-ready, status writes…).
	Counts map[string]int `json:"counts"`
	// DurationMs is the wall time of the whole run.
	DurationMs float64 `json:"duration_ms"`
	// Dir is the run directory.
	Dir string `json:"dir,omitempty"`
	// TraceHash is the SHA-256 of the full event trace (virtual backend):
	// the same seed and commit always give the same hash.
	TraceHash string `json:"trace_hash,omitempty"`
	// Error is set when the run itself failed (not an invariant).
	Error string `json:"error,omitempty"`
}

// SetOutcome copies what every backend reports from the invariant check:
// latency and drift, overall and outside the fault windows, and when the
// clusters converged.
func (s *Summary) SetOutcome(o *invariant.Outcome) {
	s.Latency, s.LatencyOutside = o.Latency, o.Outside
	s.Drift, s.DriftOutside = o.Drift, o.OutsideDrift
	s.ConvergedAfterMs = Ms(o.ConvergedAfter)
}

// driftLine is a DriftStats for people: the mean number of clusters out of
// sync and the longest interval.
func driftLine(d invariant.DriftStats) string {
	return fmt.Sprintf("mean %.3f objects out of sync, longest %.0fms", d.MeanObjects, d.LongestMs)
}

// FaultResult is one fault of a run.
type FaultResult struct {
	Index    int    `json:"index"`
	Type     string `json:"type"`
	Schedule string `json:"schedule"`
	// Skipped is why the backend could not run the fault; a skipped fault
	// fails the run's "faults" check.
	Skipped string `json:"skipped,omitempty"`
	// Error is set when the fault failed to start or stop.
	Error string `json:"error,omitempty"`
	// Window is when the fault was on and the latency of samples inside it.
	Window *invariant.WindowLatency `json:"window,omitempty"`
	// Effect holds what the fault measurably did (fault-specific keys).
	Effect map[string]float64 `json:"effect,omitempty"`
	// Plane is what the control plane and the operator's informers did
	// in the window (local backend: sampled once a second).
	Plane *PlaneStats `json:"plane,omitempty"`
}

// FaultsCheck is the "faults" check every backend adds to its invariants:
// a fault that was skipped or failed fails the run, so a scenario never
// passes without the faults it asked for.
func FaultsCheck(fs []FaultResult) invariant.Result {
	r := invariant.Result{Name: "faults", Passed: true}
	var bad []string
	for _, f := range fs {
		switch {
		case f.Skipped != "":
			bad = append(bad, fmt.Sprintf("%s skipped: %s", f.Type, f.Skipped))
		case f.Error != "":
			bad = append(bad, fmt.Sprintf("%s failed: %s", f.Type, f.Error))
		}
	}
	switch {
	case len(bad) > 0:
		r.Passed, r.Detail = false, strings.Join(bad, "; ")
	case len(fs) == 0:
		r.Detail = "no faults in this scenario"
	default:
		r.Detail = fmt.Sprintf("%d fault windows injected", len(fs))
	}
	return r
}

// CountedKinds are the history record kinds a summary counts.
var CountedKinds = []string{history.KindOp, history.KindPodReady, history.KindTruth, history.KindReported, history.KindStatusWrite, history.KindReconcileEnd, history.KindEvent}

// Counts counts a history's records of each of CountedKinds.
func Counts(recs []history.Record) map[string]int {
	c := NewCounter()
	for i := range recs {
		c.Add(&recs[i])
	}
	return c
}

// Counter is Counts one record at a time: a count, from 0, of each of
// CountedKinds.
type Counter map[string]int

// NewCounter is a Counter with every count at 0.
func NewCounter() Counter {
	c := make(Counter, len(CountedKinds))
	for _, k := range CountedKinds {
		c[k] = 0
	}
	return c
}

// Add counts r when its kind is counted.
func (c Counter) Add(r *history.Record) {
	if n, ok := c[r.Kind]; ok {
		c[r.Kind] = n + 1
	}
}

// Ms converts a duration to fractional milliseconds.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteJSON writes the summary as indented JSON to path.
func (s *Summary) WriteJSON(path string) error { return WriteJSONFile(path, s) }

// ReadSummary reads a summary.json.
func ReadSummary(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &Summary{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Print writes the human summary.
func (s *Summary) Print(w io.Writer) {
	verdict := "PASS"
	if !s.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s  scenario %s  backend %s  seed %d  (%.1fs)\n", verdict, s.Scenario, s.Backend, s.Seed, s.DurationMs/1000)
	if s.Operator != "" || s.Subject != "" {
		fmt.Fprintf(w, "  operator: %s  subject: %s\n", s.Operator, s.Subject)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  run error: %s\n", s.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  invariant\tresult\tdetail")
	for _, r := range s.Invariants {
		res := "pass"
		if !r.Passed {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Name, res, r.Detail)
	}
	_ = tw.Flush()
	l := s.Latency
	fmt.Fprintf(w, "  latency truth change → reported (%d samples): p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms",
		l.Count, l.P50, l.P90, l.P99, l.Max)
	if l.Unresolved > 0 {
		fmt.Fprintf(w, "  unresolved %d", l.Unresolved)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  drift reported ≠ truth: %s\n", driftLine(s.Drift))
	if len(s.Faults) > 0 {
		fmt.Fprintf(w, "  outside fault windows (%d samples): mean %.1fms  p50 %.1fms  p99 %.1fms  max %.1fms; drift %s\n",
			s.LatencyOutside.Count, s.LatencyOutside.Mean, s.LatencyOutside.P50, s.LatencyOutside.P99, s.LatencyOutside.Max, driftLine(s.DriftOutside))
		if s.PlaneOutside != nil {
			fmt.Fprintf(w, "      plane: %s\n", planeLine(s.PlaneOutside))
		}
	}
	for _, f := range s.Faults {
		switch {
		case f.Skipped != "":
			fmt.Fprintf(w, "  fault %d %s: skipped: %s\n", f.Index, f.Type, f.Skipped)
			continue
		case f.Error != "":
			fmt.Fprintf(w, "  fault %d %s: error: %s\n", f.Index, f.Type, f.Error)
		}
		if f.Window != nil {
			l := f.Window.Latency
			fmt.Fprintf(w, "  fault %d %s [%.1fs–%.1fs] (%d samples): mean %.1fms  p50 %.1fms  p99 %.1fms  max %.1fms",
				f.Index, f.Type, f.Window.StartMs/1000, f.Window.EndMs/1000, l.Count, l.Mean, l.P50, l.P99, l.Max)
			if l.Unresolved > 0 {
				fmt.Fprintf(w, "  unresolved %d", l.Unresolved)
			}
			fmt.Fprintf(w, "; drift %s\n", driftLine(f.Window.Drift))
		}
		if len(f.Effect) > 0 {
			fmt.Fprintf(w, "      effect: %s\n", joinSorted(f.Effect))
		}
		if f.Plane != nil {
			fmt.Fprintf(w, "      plane: %s\n", planeLine(f.Plane))
		}
	}
	if s.Startup != (Startup{}) {
		fmt.Fprintf(w, "  start-up: etcd %.0fms  kube-apiserver %.0fms  CRDs %.0fms  operator %.0fms",
			s.Startup.EtcdMs, s.Startup.APIServerMs, s.Startup.CRDsMs, s.Startup.OperatorMs)
		if s.Startup.KubeControllerManagerMs > 0 || s.Startup.KubeSchedulerMs > 0 {
			fmt.Fprintf(w, "  kube-controller-manager %.0fms  kube-scheduler %.0fms  nodes %.0fms",
				s.Startup.KubeControllerManagerMs, s.Startup.KubeSchedulerMs, s.Startup.NodesMs)
		}
		fmt.Fprintln(w)
	}
	if s.TraceHash != "" {
		fmt.Fprintf(w, "  trace_hash: %s\n", s.TraceHash)
	}
	if len(s.Metrics) > 0 {
		fmt.Fprintf(w, "  metrics: %s\n", joinSorted(s.Metrics))
	}
	if len(s.Counts) > 0 {
		keys := make([]string, 0, len(s.Counts))
		for k := range s.Counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			if s.Counts[k] > 0 || k == history.KindOp {
				parts = append(parts, fmt.Sprintf("%s %d", k, s.Counts[k]))
			}
		}
		fmt.Fprintf(w, "  history: %s\n", strings.Join(parts, ", "))
	}
	if s.Dir != "" {
		fmt.Fprintf(w, "  run directory: %s (summary.json, history.jsonl, latency.hlog, logs)\n", s.Dir)
	}
}

// WriteHlog writes h, whose values are microseconds, as an HdrHistogram
// interval log covering [start, end].
func WriteHlog(path string, h *hdrhistogram.Histogram, start, end time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	lw := hdrhistogram.NewHistogramLogWriter(f)
	h.SetStartTimeMs(start.UnixMilli())
	h.SetEndTimeMs(end.UnixMilli())
	h.SetTag("truth-to-reported-us")
	err = firstErr(
		lw.OutputLogFormatVersion(),
		lw.OutputStartTime(start.UnixMilli()),
		lw.OutputComment("driftlab: latency from a truth change to the reported value reflecting it, values in microseconds"),
		lw.OutputLegend(),
		lw.OutputIntervalHistogram(h),
	)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadHlog reads the histograms of an interval log.
func ReadHlog(path string) ([]*hdrhistogram.Histogram, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lr := hdrhistogram.NewHistogramLogReader(f)
	var out []*hdrhistogram.Histogram
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return out, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		if h == nil {
			return out, nil
		}
		out = append(out, h)
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// joinSorted prints a metric map as "k=v" pairs in key order.
func joinSorted(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, m[k]))
	}
	return strings.Join(parts, " ")
}

package invariant

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
)

// Names of the invariants.
const (
	DriftConvergence = "drift-convergence"
	DriftStaleness   = "drift-staleness"
	LatencySLO       = "latency"
)

// Result is the outcome of one invariant.
type Result struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// LatencyStats summarises the Pod-ready → status latency of a run.
type LatencyStats struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	// Unresolved counts Pods whose readiness no status write ever reflected.
	Unresolved int `json:"unresolved"`
	// Abandoned counts samples dropped because their cluster was deleted first.
	Abandoned int `json:"abandoned"`
}

// WindowLatency is the latency of the samples that overlap one fault window.
type WindowLatency struct {
	// Fault is the fault's type, Index its position in the scenario.
	Fault string `json:"fault"`
	Index int    `json:"index"`
	// StartMs and EndMs bound the window in run time.
	StartMs float64      `json:"start_ms"`
	EndMs   float64      `json:"end_ms"`
	Latency LatencyStats `json:"latency"`
	// Drift is how long statuses disagreed with the truth in the window.
	Drift DriftStats `json:"drift"`
}

// Outcome is the result of checking a history.
type Outcome struct {
	Results []Result
	Latency LatencyStats
	// Windows holds the latency inside each fault window; Outside the
	// latency of samples that overlap no window.
	Windows []WindowLatency
	Outside LatencyStats
	// Drift is how long statuses disagreed with the truth from the first
	// truth record to the end of the workload; OutsideDrift the part of
	// that span no fault window covers.
	Drift, OutsideDrift DriftStats
	// drifts are the out-of-sync intervals, for DriftOver.
	drifts []interval
	// Histogram holds the latency samples in microseconds; nil after
	// RecycleHistogram.
	Histogram *hdrhistogram.Histogram
	// ConvergedAfter is how long after the workload ended the last cluster
	// converged (0 when it already was).
	ConvergedAfter time.Duration
	// Samples are the latency samples in the order they were resolved, then
	// the unresolved ones (for plots such as report.html).
	Samples []Sample
	// Violations are the moments an invariant was broken (stale status
	// writes, unresolved samples, clusters not converged by the deadline).
	Violations []Violation
}

// Sample is one latency sample: a Pod became Ready at ReadyAt and a status
// first reflected it at ReflectedAt (the end of the run when Unresolved).
type Sample struct {
	Cluster     string        `json:"cluster"`
	Pod         string        `json:"pod"`
	ReadyAt     time.Duration `json:"ready_at_ns"`
	ReflectedAt time.Duration `json:"reflected_at_ns"`
	Unresolved  bool          `json:"unresolved,omitempty"`
}

// Violation is one moment an invariant was broken.
type Violation struct {
	T         time.Duration `json:"t_ns"`
	Invariant string        `json:"invariant"`
	Cluster   string        `json:"cluster,omitempty"`
	Detail    string        `json:"detail"`
}

// Passed reports whether every invariant passed.
func (o *Outcome) Passed() bool {
	for _, r := range o.Results {
		if !r.Passed {
			return false
		}
	}
	return true
}

// FirstFailure returns the first failing invariant, or nil.
func (o *Outcome) FirstFailure() *Result {
	for i := range o.Results {
		if !o.Results[i].Passed {
			return &o.Results[i]
		}
	}
	return nil
}

// NewHistogram returns a latency histogram: 1 µs to 1 h, 3 significant digits.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
}

// histograms holds latency histograms handed back with RecycleHistogram.
// One is 188 KB of counts; a virtual run that only needs a verdict hands
// its back so that the next run's Checker does not allocate and zero a new
// one.
var histograms sync.Pool

// pooledHistogram returns an empty latency histogram, reused when one was
// handed back.
func pooledHistogram() *hdrhistogram.Histogram {
	if h, ok := histograms.Get().(*hdrhistogram.Histogram); ok {
		h.Reset()
		return h
	}
	return NewHistogram()
}

// RecycleHistogram hands back an Outcome's histogram once nothing reads it
// any more, for a later Checker to reuse. The Outcome must not be used for
// its histogram after the call.
func (o *Outcome) RecycleHistogram() {
	if o.Histogram != nil {
		histograms.Put(o.Histogram)
		o.Histogram = nil
	}
}

type pending struct {
	pod   string
	at    time.Duration
	count int32 // ready count right after the Pod became Ready
}

type countChange struct {
	at    time.Duration
	count int32
}

// Check replays a history and evaluates every invariant.
func Check(recs []history.Record, inv scenarios.Invariants) *Outcome {
	if !slices.IsSortedFunc(recs, func(a, b history.Record) int { return cmp.Compare(a.T, b.T) }) {
		recs = Sorted(recs) // Check only reads: sorted records need no copy
	}
	c := NewChecker(inv)
	for i := range recs {
		c.Add(&recs[i])
	}
	return c.Finish()
}

// Checker is Check one record at a time, for a history that is still
// being made: Add each record in time order (records of one instant in
// the order they happened, as Sorted gives them), then Finish. Add keeps
// no pointer to a record.
type Checker struct {
	inv   scenarios.Invariants
	truth *Truth
	h     *hdrhistogram.Histogram
	// values are the latencies h holds, in µs, in the order recorded
	// (meanOf).
	values []int64
	stats  LatencyStats
	// waiting holds each cluster's Ready Pods its status has not
	// reflected yet; counts its ready count history.
	waiting     map[string][]pending
	counts      map[string][]countChange
	inSyncSince map[string]time.Duration
	// lastChange is when the truth a cluster's status must reflect last
	// changed (spec, or a member created, deleted, Ready or not);
	// changeBeforeSync is that time as it was when the cluster last came
	// into sync. A change after the workload ended (a Pod the kubelet makes
	// Ready late) restarts the convergence clock: the operator cannot
	// reflect it before it happens.
	lastChange, changeBeforeSync map[string]time.Duration
	workloadEnd, runEnd          time.Duration
	staleViolations              []string
	staleCount                   int
	samples                      []sample
	exported                     []Sample
	violations                   []Violation
	// outSince is when each existing cluster last went out of sync;
	// drifts the closed out-of-sync intervals, in the order they closed.
	outSince   map[string]time.Duration
	drifts     []interval
	firstTruth time.Duration
	// faultRecs are the fault start and stop records (faultWindows).
	faultRecs []history.Record
	lastT     time.Duration
}

// NewChecker starts a check of a history against inv.
func NewChecker(inv scenarios.Invariants) *Checker {
	return &Checker{inv: inv, truth: NewTruth(), h: pooledHistogram(),
		waiting: map[string][]pending{}, counts: map[string][]countChange{}, inSyncSince: map[string]time.Duration{},
		lastChange: map[string]time.Duration{}, changeBeforeSync: map[string]time.Duration{},
		outSince: map[string]time.Duration{}, workloadEnd: -1, firstTruth: -1}
}

func (c *Checker) resolve(cluster string, now time.Duration, cs *ClusterState) {
	var keep []pending
	for _, p := range c.waiting[cluster] {
		if cs.HasStatus && (cs.StatusReady >= p.count || cs.StatusReady == cs.ReadyCount()) {
			if v := max(int64((now-p.at)/time.Microsecond), 0); c.h.RecordValue(v) == nil {
				c.values = append(c.values, v)
			}
			c.samples = append(c.samples, sample{from: p.at, to: now})
			c.exported = append(c.exported, Sample{Cluster: cluster, Pod: p.pod, ReadyAt: p.at, ReflectedAt: now})
		} else {
			keep = append(keep, p)
		}
	}
	c.waiting[cluster] = keep
}

func (c *Checker) endDrift(cluster string, now time.Duration) {
	if from, ok := c.outSince[cluster]; ok {
		c.drifts = append(c.drifts, interval{from, now})
		delete(c.outSince, cluster)
	}
}

func (c *Checker) noteSync(cluster string, now time.Duration) {
	cs := c.truth.Clusters[cluster]
	if cs == nil {
		delete(c.inSyncSince, cluster)
		c.endDrift(cluster, now)
		return
	}
	ok := cs.inSync()
	_, was := c.inSyncSince[cluster]
	switch {
	case ok && !was:
		c.inSyncSince[cluster] = now
		c.changeBeforeSync[cluster] = c.lastChange[cluster]
		c.endDrift(cluster, now)
	case !ok:
		delete(c.inSyncSince, cluster)
		if _, open := c.outSince[cluster]; !open {
			c.outSince[cluster] = now
		}
	}
}

// Add replays one record. Records must come in time order: one earlier
// than the record before it is a bug in the caller, and panics.
func (c *Checker) Add(r *history.Record) {
	if r.T < c.lastT {
		panic(fmt.Sprintf("invariant: Checker.Add: record at %v after one at %v (records must come in time order)", r.T, c.lastT))
	}
	c.lastT = r.T
	if r.T > c.runEnd {
		c.runEnd = r.T
	}
	switch r.Kind {
	case history.KindWorkloadEnd:
		c.workloadEnd = r.T
	case history.KindRunEnd:
		c.runEnd = r.T
	case history.KindFaultStart, history.KindFaultStop:
		c.faultRecs = append(c.faultRecs, *r)
	}
	if r.Source != history.SourceTruth {
		return
	}
	if c.firstTruth < 0 {
		c.firstTruth = r.T
	}
	c.truth.apply(r)
	cluster := r.Cluster
	if r.Kind == history.KindPodDeleted && cluster == "" {
		return
	}
	cs := c.truth.Clusters[cluster]
	if r.Kind != history.KindClusterStatus {
		c.lastChange[cluster] = r.T
	}
	inv := c.inv
	switch r.Kind {
	case history.KindPodReady, history.KindPodUnready, history.KindPodDeleted, history.KindPodCreated:
		if cs == nil {
			break
		}
		n := cs.ReadyCount()
		if ch := c.counts[cluster]; len(ch) == 0 || ch[len(ch)-1].count != n {
			c.counts[cluster] = append(ch, countChange{r.T, n})
		}
		if r.Kind == history.KindPodReady {
			c.waiting[cluster] = append(c.waiting[cluster], pending{pod: r.Pod, at: r.T, count: n})
			c.resolve(cluster, r.T, cs)
		}
	case history.KindClusterSpec:
		if len(c.counts[cluster]) == 0 {
			c.counts[cluster] = []countChange{{r.T, cs.ReadyCount()}}
		}
	case history.KindClusterStatus:
		c.resolve(cluster, r.T, cs)
		if r.Ready != nil && !claimedWithin(c.counts[cluster], r.T, inv.Drift.Staleness.Duration, *r.Ready) {
			c.staleCount++
			c.violations = append(c.violations, Violation{T: r.T, Invariant: DriftStaleness, Cluster: cluster,
				Detail: fmt.Sprintf("claimed readyReplicas=%d", *r.Ready)})
			if len(c.staleViolations) < 3 {
				c.staleViolations = append(c.staleViolations, fmt.Sprintf("%s at %.3fs claimed readyReplicas=%d, true counts in the %s before were %v",
					cluster, r.T.Seconds(), *r.Ready, inv.Drift.Staleness, countsWithin(c.counts[cluster], r.T, inv.Drift.Staleness.Duration)))
			}
		}
	case history.KindClusterDeleted:
		c.stats.Abandoned += len(c.waiting[cluster])
		delete(c.waiting, cluster)
		delete(c.counts, cluster)
	}
	c.noteSync(cluster, r.T)
}

// Finish evaluates the invariants over the records added. Call it once.
func (c *Checker) Finish() *Outcome {
	inv, truth, h, stats, waiting := c.inv, c.truth, c.h, c.stats, c.waiting
	inSyncSince, changeBeforeSync := c.inSyncSince, c.changeBeforeSync
	workloadEnd, runEnd, staleViolations, staleCount := c.workloadEnd, c.runEnd, c.staleViolations, c.staleCount
	samples, exported, violations := c.samples, c.exported, c.violations
	outSince, drifts, firstTruth := c.outSince, c.drifts, c.firstTruth
	nResolved := len(exported)
	for cl, ps := range waiting {
		stats.Unresolved += len(ps)
		for _, p := range ps {
			samples = append(samples, sample{from: p.at, to: runEnd, unresolved: true})
			exported = append(exported, Sample{Cluster: cl, Pod: p.pod, ReadyAt: p.at, ReflectedAt: runEnd, Unresolved: true})
			violations = append(violations, Violation{T: p.at, Invariant: LatencySLO, Cluster: cl, Detail: p.pod + " Ready, never reflected in status"})
		}
	}
	unresolved := exported[nResolved:] // map order: sort for a stable result
	sort.Slice(unresolved, func(i, j int) bool {
		if unresolved[i].ReadyAt != unresolved[j].ReadyAt {
			return unresolved[i].ReadyAt < unresolved[j].ReadyAt
		}
		return unresolved[i].Pod < unresolved[j].Pod
	})

	out := &Outcome{Histogram: h, Samples: exported}
	// drift-convergence
	conv := Result{Name: DriftConvergence, Passed: true}
	deadline := workloadEnd + inv.Drift.ConvergeWithin.Duration
	var bad []string
	for _, k := range truth.Keys() {
		ok, why := truth.Clusters[k].InSync()
		since, has := inSyncSince[k]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s never converged: %s", k, why))
			violations = append(violations, Violation{T: max(deadline, 0), Invariant: DriftConvergence, Cluster: k, Detail: "never converged: " + why})
		case has && since > max(deadline, changeBeforeSync[k]+inv.Drift.ConvergeWithin.Duration):
			bad = append(bad, fmt.Sprintf("%s converged %.3fs after the workload ended (limit %s)", k, (since-workloadEnd).Seconds(), inv.Drift.ConvergeWithin))
		}
		if has && since-workloadEnd > out.ConvergedAfter {
			out.ConvergedAfter = since - workloadEnd
		}
	}
	switch {
	case workloadEnd < 0:
		conv.Passed, conv.Detail = false, "the run ended before the workload did"
	case len(bad) > 0:
		conv.Passed, conv.Detail = false, strings.Join(bad, "; ")
	default:
		conv.Detail = fmt.Sprintf("%d clusters match the truth; converged %.3fs after the workload ended (limit %s)",
			len(truth.Clusters), out.ConvergedAfter.Seconds(), inv.Drift.ConvergeWithin)
	}
	// drift-staleness
	stale := Result{Name: DriftStaleness, Passed: staleCount == 0}
	if stale.Passed {
		stale.Detail = fmt.Sprintf("every status write claimed a count that was true within %s before it", inv.Drift.Staleness)
	} else {
		stale.Detail = fmt.Sprintf("%d status writes claimed counts never true within %s: %s", staleCount, inv.Drift.Staleness, strings.Join(staleViolations, "; "))
	}
	// latency
	abandoned := stats.Abandoned
	stats = statsOf(h, stats.Unresolved, c.values)
	stats.Abandoned = abandoned
	out.Latency = stats
	for _, from := range outSince { // still out of sync: drifts to the end
		drifts = append(drifts, interval{from, runEnd})
	}
	span := interval{max(firstTruth, 0), runEnd}
	if workloadEnd >= 0 {
		span.to = max(workloadEnd, span.from)
	}
	ws := faultWindows(c.faultRecs, runEnd)
	var windowDrift []DriftStats
	out.drifts = drifts
	out.Drift, windowDrift, out.OutsideDrift = splitDrift(drifts, span, ws)
	if len(ws) > 0 {
		out.Windows, out.Outside = splitByWindows(samples, ws)
		for i := range out.Windows {
			out.Windows[i].Drift = windowDrift[i]
		}
	} else {
		// No fault windows: every sample is outside, and the resolved ones
		// are exactly what h holds (a resolved sample never ends before it
		// starts: the records are in time order), so the outside
		// statistics are h's, without a second histogram.
		out.Windows, out.Outside = []WindowLatency{}, stats
		out.Outside.Abandoned = 0
	}
	out.Results = []Result{conv, stale, checkLatency(stats, inv.Latency)}
	sort.SliceStable(violations, func(i, j int) bool {
		if violations[i].T != violations[j].T {
			return violations[i].T < violations[j].T
		}
		return violations[i].Detail < violations[j].Detail
	})
	out.Violations = violations
	return out
}

func checkLatency(s LatencyStats, slo scenarios.Latency) Result {
	r := Result{Name: LatencySLO, Passed: true}
	var fails, oks []string
	for _, q := range []struct {
		name  string
		got   float64
		limit time.Duration
	}{{"p50", s.P50, slo.P50.Duration}, {"p90", s.P90, slo.P90.Duration}, {"p99", s.P99, slo.P99.Duration}, {"max", s.Max, slo.Max.Duration}} {
		if q.limit <= 0 {
			continue
		}
		if q.got > ms(q.limit) {
			fails = append(fails, fmt.Sprintf("%s %.1fms > %s", q.name, q.got, q.limit))
		} else {
			oks = append(oks, fmt.Sprintf("%s %.1fms ≤ %s", q.name, q.got, q.limit))
		}
	}
	if s.Unresolved > 0 {
		fails = append(fails, fmt.Sprintf("%d Pod-ready events never reflected in status", s.Unresolved))
	}
	if s.Count == 0 && s.Unresolved == 0 {
		fails = append(fails, "no Pod became Ready: nothing was measured")
	}
	if len(fails) > 0 {
		r.Passed, r.Detail = false, strings.Join(fails, "; ")
		return r
	}
	if len(oks) == 0 {
		r.Detail = fmt.Sprintf("%d samples, no SLO set", s.Count)
	} else {
		r.Detail = fmt.Sprintf("%d samples: %s", s.Count, strings.Join(oks, ", "))
	}
	return r
}

// claimedWithin reports whether the ready count was n at some moment in
// [at-bound, at].
func claimedWithin(ch []countChange, at, bound time.Duration, n int32) bool {
	for _, v := range countsWithin(ch, at, bound) {
		if v == n {
			return true
		}
	}
	return false
}

// countsWithin lists the ready counts in effect during [at-bound, at].
func countsWithin(ch []countChange, at, bound time.Duration) []int32 {
	from := at - bound
	seen := map[int32]bool{}
	var out []int32
	add := func(v int32) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	// The count in effect at the window's start.
	i := sort.Search(len(ch), func(i int) bool { return ch[i].at > from })
	if i > 0 {
		add(ch[i-1].count)
	} else {
		add(0) // before any change, a new cluster has no ready members
	}
	for ; i < len(ch) && ch[i].at <= at; i++ {
		add(ch[i].count)
	}
	return out
}

type sample struct {
	from, to   time.Duration
	unresolved bool
}

type window struct {
	fault    string
	index    int
	from, to time.Duration
}

// faultWindows pairs fault-start and fault-stop records (Detail holds the
// fault's index); a window not stopped runs to the end of the run.
func faultWindows(recs []history.Record, runEnd time.Duration) []window {
	var out []window
	open := map[string]int{}
	for _, r := range recs {
		switch {
		case r.Kind == history.KindFaultStart && r.Err == "":
			open[r.Detail] = len(out)
			idx := 0
			fmt.Sscanf(r.Detail, "%d", &idx)
			out = append(out, window{fault: r.Op, index: idx, from: r.T, to: -1})
		case r.Kind == history.KindFaultStop:
			if i, ok := open[r.Detail]; ok {
				out[i].to = r.T
				delete(open, r.Detail)
			}
		}
	}
	for i := range out {
		if out[i].to < 0 {
			out[i].to = runEnd
		}
	}
	return out
}

// splitByWindows computes latency statistics per window (samples whose
// [ready, reflected] interval overlaps it) and outside every window.
func splitByWindows(samples []sample, ws []window) ([]WindowLatency, LatencyStats) {
	hs := make([]*hdrhistogram.Histogram, len(ws))
	unres := make([]int, len(ws))
	for i := range hs {
		hs[i] = NewHistogram()
	}
	outside, outUnres := NewHistogram(), 0
	for _, s := range samples {
		in := false
		for i, w := range ws {
			if s.from <= w.to && s.to >= w.from {
				in = true
				if s.unresolved {
					unres[i]++
				} else {
					_ = hs[i].RecordValue(int64((s.to - s.from) / time.Microsecond))
				}
			}
		}
		if !in {
			if s.unresolved {
				outUnres++
			} else {
				_ = outside.RecordValue(int64((s.to - s.from) / time.Microsecond))
			}
		}
	}
	out := make([]WindowLatency, len(ws))
	for i, w := range ws {
		out[i] = WindowLatency{Fault: w.fault, Index: w.index, StartMs: ms(w.from), EndMs: ms(w.to), Latency: statsOf(hs[i], unres[i], nil)}
	}
	return out, statsOf(outside, outUnres, nil)
}

// meanOf is h.Mean(), computed from the values h holds instead of from
// its 23,552 counts: HdrHistogram's mean is the sum, over the non-empty
// counts in value order, of count × the median of the count's range /
// total; values sorted fall into the same counts in the same order, so
// the float operations are the same ones. histogramRange is a count's
// range in NewHistogram's layout (TestMeanOfIsHistogramMean). values is
// sorted in place; when it does not match h, h.Mean(). In ms.
func meanOf(h *hdrhistogram.Histogram, values []int64) float64 {
	total := h.TotalCount()
	if total == 0 || int64(len(values)) != total || h.LowestTrackableValue() != 1 || h.SignificantFigures() != 3 {
		return h.Mean() / 1000
	}
	slices.Sort(values)
	var mean float64
	ft := float64(total)
	for i := 0; i < len(values); {
		lowest, size := histogramRange(values[i])
		j := i + 1
		for j < len(values) && values[j] < lowest+size {
			j++
		}
		mean += float64(j-i) * float64(lowest+size>>1) / ft
		i = j
	}
	return mean / 1000
}

// histogramRange returns the lowest value and the size of the range of
// values that one count of NewHistogram holds (1 µs, 3 significant
// figures: 2,048 sub-buckets, so each value below 2,048 has a count of
// its own and each power of two above that doubles the range).
func histogramRange(v int64) (lowest, size int64) {
	const subBucketMask = 2047
	bucket := 64 - bits.LeadingZeros64(uint64(v|subBucketMask)) - 11
	return v >> bucket << bucket, int64(1) << bucket
}

// statsQuantiles are the percentiles statsOf reports: p50, p90, p99, max.
var statsQuantiles = [4]float64{50, 90, 99, 100}

// statsOf summarises h; values, when not nil, are the values h holds
// (meanOf).
func statsOf(h *hdrhistogram.Histogram, unresolved int, values []int64) LatencyStats {
	s := LatencyStats{Count: h.TotalCount(), Unresolved: unresolved}
	if s.Count > 0 {
		// One pass for the quantiles and the maximum (the 100th
		// percentile is Max's bucket, reported the same way), instead of
		// one pass over the 23,552 counts for each.
		q := h.ValueAtPercentilesSlice(statsQuantiles[:])
		s.Mean = meanOf(h, values)
		s.P50 = ms(time.Duration(q[0]) * time.Microsecond)
		s.P90 = ms(time.Duration(q[1]) * time.Microsecond)
		s.P99 = ms(time.Duration(q[2]) * time.Microsecond)
		s.Max = ms(time.Duration(q[3]) * time.Microsecond)
	}
	return s
}

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

// LatencyStats summarises the latency of a run: from the commit that
// changed a truth to the commit whose reported value reflects it.
type LatencyStats struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	// Unresolved counts truth changes no reported value ever reflected.
	Unresolved int `json:"unresolved"`
	// Abandoned counts samples dropped because their object was deleted first.
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
	// Drift is how long reported values disagreed with the truth in the window.
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
	// Drift is how long reported values disagreed with the truth from the
	// first truth record to the end of the workload; OutsideDrift the part
	// of that span no fault window covers.
	Drift, OutsideDrift DriftStats
	// drifts are the out-of-sync intervals, for DriftOver; span and
	// windows what Drift and the windows' drift were measured over, for
	// OutsideDriftAfterRecovery.
	drifts  []interval
	span    interval
	windows []interval
	// Histogram holds the latency samples in microseconds; nil after
	// RecycleHistogram.
	Histogram *hdrhistogram.Histogram
	// ConvergedAfter is how long after the workload ended the last object
	// converged (0 when it already was).
	ConvergedAfter time.Duration
	// Samples are the latency samples in the order they were resolved, then
	// the unresolved ones (for plots such as report.html).
	Samples []Sample
	// Violations are the moments an invariant was broken (stale reported
	// values, unresolved samples, objects not converged by the deadline).
	Violations []Violation
	// Kind and Operator are what the history's subject record names.
	Kind, Operator string
}

// Sample is one latency sample: a truth of Object's Property changed at
// ChangedAt (the commit of Pod, when a Pod's commit changed it) and a
// reported value first reflected it at ReflectedAt (the end of the run
// when Unresolved).
type Sample struct {
	Object      string        `json:"object"`
	Property    string        `json:"property"`
	Pod         string        `json:"pod,omitempty"`
	ChangedAt   time.Duration `json:"changed_at_ns"`
	ReflectedAt time.Duration `json:"reflected_at_ns"`
	Unresolved  bool          `json:"unresolved,omitempty"`
}

// Violation is one moment an invariant was broken.
type Violation struct {
	T         time.Duration `json:"t_ns"`
	Invariant string        `json:"invariant"`
	Object    string        `json:"object,omitempty"`
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
	prop  int
	value string // the truth the change gave
	n     int64  // value as a number (ReflectAtLeast)
	at    time.Duration
	pod   string // the Pod whose commit changed it
}

type valueChange struct {
	at    time.Duration
	value string
}

// objCheck is what the checker keeps per object.
type objCheck struct {
	// waiting are the truth changes no reported value reflected yet.
	waiting []pending
	// hist is each property's truth history (staleness); known says
	// whether a truth record gave the property a value yet.
	hist  [][]valueChange
	known []bool
	// inSync and inSyncSince: whether and since when the object is in sync.
	inSync      bool
	inSyncSince time.Duration
	// lastChange is when a truth of the object last changed;
	// changeBeforeSync that time as it was when the object last came
	// into sync. A change after the workload ended (a Pod the kubelet
	// makes Ready late) restarts the convergence clock: the operator
	// cannot reflect it before it happens.
	lastChange, changeBeforeSync time.Duration
	// out and outSince: whether and since when it is out of sync (drift).
	out      bool
	outSince time.Duration
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
	values          []int64
	stats           LatencyStats
	objs            map[string]*objCheck
	workloadEnd     int64 // time.Duration; -1 until the workload ends
	runEnd          time.Duration
	staleViolations []string
	staleCount      int
	samples         []sample
	exported        []Sample
	violations      []Violation
	// drifts are the closed out-of-sync intervals, in the order they closed.
	drifts     []interval
	firstTruth time.Duration
	// faultRecs are the fault start and stop records (faultWindows).
	faultRecs []history.Record
	lastT     time.Duration
}

// NewChecker starts a check of a history against inv.
func NewChecker(inv scenarios.Invariants) *Checker {
	return &Checker{inv: inv, truth: NewTruth(), h: pooledHistogram(), objs: map[string]*objCheck{}, workloadEnd: -1, firstTruth: -1}
}

// Truth is the world as replayed so far.
func (c *Checker) Truth() *Truth { return c.truth }

// reflects reports whether the reported value of the moment reflects a
// pending truth change.
func (c *Checker) reflects(o *ObjectState, p *pending) bool {
	rep := o.Reported[p.prop]
	if rep == "" {
		return false
	}
	if rep == o.Truth[p.prop] || rep == p.value {
		return true
	}
	if c.truth.Properties[p.prop].Reflect == history.ReflectAtLeast {
		n, ok := number(rep)
		return ok && n >= p.n
	}
	return false
}

func (c *Checker) resolve(key string, now time.Duration, o *ObjectState, oc *objCheck) {
	keep := oc.waiting[:0]
	for _, p := range oc.waiting {
		if !c.reflects(o, &p) {
			keep = append(keep, p)
			continue
		}
		if v := max(int64((now-p.at)/time.Microsecond), 0); c.h.RecordValue(v) == nil {
			c.values = append(c.values, v)
		}
		c.samples = append(c.samples, sample{from: p.at, to: now})
		c.exported = append(c.exported, Sample{Object: key, Property: c.truth.Properties[p.prop].Name, Pod: p.pod, ChangedAt: p.at, ReflectedAt: now})
	}
	oc.waiting = keep
}

func (c *Checker) endDrift(oc *objCheck, now time.Duration) {
	if oc.out {
		c.drifts = append(c.drifts, interval{oc.outSince, now})
		oc.out = false
	}
}

func (c *Checker) noteSync(oc *objCheck, o *ObjectState, now time.Duration) {
	ok := c.truth.inSync(o)
	switch {
	case ok && !oc.inSync:
		oc.inSync, oc.inSyncSince = true, now
		oc.changeBeforeSync = oc.lastChange
		c.endDrift(oc, now)
	case !ok:
		oc.inSync = false
		if !oc.out {
			oc.out, oc.outSince = true, now
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
		c.workloadEnd = int64(r.T)
	case history.KindRunEnd:
		c.runEnd = r.T
	case history.KindFaultStart, history.KindFaultStop:
		c.faultRecs = append(c.faultRecs, *r)
	case history.KindSubject:
		c.truth.apply(r)
		return
	}
	if r.Source != history.SourceTruth {
		return
	}
	switch r.Kind {
	case history.KindObjectCreated, history.KindObjectDeleted, history.KindTruth, history.KindReported:
	default:
		return // Pod records: what the truths already count
	}
	if c.firstTruth < 0 {
		c.firstTruth = r.T
	}
	key := r.Object
	if r.Kind == history.KindObjectDeleted {
		c.truth.apply(r)
		if oc := c.objs[key]; oc != nil {
			c.stats.Abandoned += len(oc.waiting)
			c.endDrift(oc, r.T)
			delete(c.objs, key)
		}
		return
	}
	o := c.truth.object(key)
	oc := c.objs[key]
	if oc == nil {
		oc = &objCheck{}
		c.objs[key] = oc
	}
	switch r.Kind {
	case history.KindObjectCreated:
		oc.lastChange = r.T
		return // judged from its first truth record, at the same commit
	case history.KindTruth:
		oc.lastChange = r.T
		started := false
		for _, p := range r.Props {
			i := c.truth.prop(p.Name)
			if i >= len(o.Truth) {
				c.truth.grow(o)
			}
			for len(oc.hist) <= i {
				oc.hist = append(oc.hist, nil)
				oc.known = append(oc.known, false)
			}
			prev, known := o.Truth[i], oc.known[i]
			o.Truth[i], oc.known[i] = p.Value, true
			info := &c.truth.Properties[i]
			if !info.NoStaleness {
				if h := oc.hist[i]; len(h) == 0 || h[len(h)-1].value != p.Value {
					oc.hist[i] = append(h, valueChange{r.T, p.Value})
				}
			}
			if !known || prev == p.Value || info.Latency == history.LatencyOff {
				continue // the first truth of an object is not a change
			}
			n, isNum := number(p.Value)
			if info.Latency == history.LatencyIncreases {
				pn, pok := number(prev)
				if !isNum || !pok || n <= pn {
					continue
				}
			}
			oc.waiting = append(oc.waiting, pending{prop: i, value: p.Value, n: n, at: r.T, pod: r.Pod})
			started = true
		}
		if started {
			c.resolve(key, r.T, o, oc)
		}
	case history.KindReported:
		c.truth.apply(r)
		for len(oc.hist) < len(o.Truth) {
			oc.hist = append(oc.hist, nil)
			oc.known = append(oc.known, false)
		}
		c.resolve(key, r.T, o, oc)
		c.checkStale(key, r.T, o, oc)
	}
	c.noteSync(oc, o, r.T)
}

// checkStale checks, at a commit that changed reported values, that each
// reported value was the truth at some moment within the staleness bound
// before it.
func (c *Checker) checkStale(key string, at time.Duration, o *ObjectState, oc *objCheck) {
	bound := c.inv.Drift.Staleness.Duration
	for i, info := range c.truth.Properties {
		if info.NoStaleness || i >= len(o.Reported) || o.Reported[i] == "" {
			continue
		}
		h := oc.hist[i]
		if claimedWithin(h, at, bound, o.Reported[i]) {
			continue
		}
		c.staleCount++
		c.violations = append(c.violations, Violation{T: at, Invariant: DriftStaleness, Object: key,
			Detail: fmt.Sprintf("reported %s=%s", info.Name, o.Reported[i])})
		if len(c.staleViolations) < 3 {
			c.staleViolations = append(c.staleViolations, fmt.Sprintf("%s at %.3fs reported %s=%s, truths in the %s before were %v",
				key, at.Seconds(), info.Name, o.Reported[i], bound, valuesWithin(h, at, bound)))
		}
	}
}

// Finish evaluates the invariants over the records added. Call it once.
func (c *Checker) Finish() *Outcome {
	inv, truth, h, stats := c.inv, c.truth, c.h, c.stats
	workloadEnd, runEnd := time.Duration(c.workloadEnd), c.runEnd
	samples, exported, violations := c.samples, c.exported, c.violations
	drifts, firstTruth := c.drifts, c.firstTruth
	nResolved := len(exported)
	keys := truth.Keys()
	for _, k := range keys {
		oc := c.objs[k]
		if oc == nil {
			continue
		}
		stats.Unresolved += len(oc.waiting)
		for _, p := range oc.waiting {
			name := truth.Properties[p.prop].Name
			samples = append(samples, sample{from: p.at, to: runEnd, unresolved: true})
			exported = append(exported, Sample{Object: k, Property: name, Pod: p.pod, ChangedAt: p.at, ReflectedAt: runEnd, Unresolved: true})
			what := fmt.Sprintf("%s changed to %s, never reflected", name, p.value)
			if p.pod != "" {
				what = fmt.Sprintf("%s changed to %s (Pod %s), never reflected", name, p.value, p.pod)
			}
			violations = append(violations, Violation{T: p.at, Invariant: LatencySLO, Object: k, Detail: what})
		}
	}
	unresolved := exported[nResolved:]
	sort.SliceStable(unresolved, func(i, j int) bool { return unresolved[i].ChangedAt < unresolved[j].ChangedAt })

	out := &Outcome{Histogram: h, Samples: exported, Kind: truth.Kind, Operator: truth.Operator}
	// drift-convergence
	conv := Result{Name: DriftConvergence, Passed: true}
	deadline := workloadEnd + inv.Drift.ConvergeWithin.Duration
	var bad []string
	for _, k := range keys {
		ok, why := truth.InSync(k)
		oc := c.objs[k]
		if oc == nil {
			oc = &objCheck{}
		}
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s never converged: %s", k, why))
			violations = append(violations, Violation{T: max(deadline, 0), Invariant: DriftConvergence, Object: k, Detail: "never converged: " + why})
		case oc.inSync && oc.inSyncSince > max(deadline, oc.changeBeforeSync+inv.Drift.ConvergeWithin.Duration):
			bad = append(bad, fmt.Sprintf("%s converged %.3fs after the workload ended (limit %s)", k, (oc.inSyncSince-workloadEnd).Seconds(), inv.Drift.ConvergeWithin))
		}
		if oc.inSync && oc.inSyncSince-workloadEnd > out.ConvergedAfter {
			out.ConvergedAfter = oc.inSyncSince - workloadEnd
		}
	}
	switch {
	case workloadEnd < 0:
		conv.Passed, conv.Detail = false, "the run ended before the workload did"
	case len(bad) > 0:
		conv.Passed, conv.Detail = false, strings.Join(bad, "; ")
	default:
		conv.Detail = fmt.Sprintf("%d objects match the truth; converged %.3fs after the workload ended (limit %s)",
			len(truth.Objects), out.ConvergedAfter.Seconds(), inv.Drift.ConvergeWithin)
	}
	// drift-staleness
	stale := Result{Name: DriftStaleness, Passed: c.staleCount == 0}
	if stale.Passed {
		stale.Detail = fmt.Sprintf("every reported value was true within %s before it was reported", inv.Drift.Staleness)
	} else {
		stale.Detail = fmt.Sprintf("%d reported values never true within %s before: %s", c.staleCount, inv.Drift.Staleness, strings.Join(c.staleViolations, "; "))
	}
	// latency
	abandoned := stats.Abandoned
	stats = statsOf(h, stats.Unresolved, c.values)
	stats.Abandoned = abandoned
	out.Latency = stats
	for _, k := range keys { // still out of sync: drifts to the end
		if oc := c.objs[k]; oc != nil && oc.out {
			drifts = append(drifts, interval{oc.outSince, runEnd})
		}
	}
	span := interval{max(firstTruth, 0), runEnd}
	if workloadEnd >= 0 {
		span.to = max(workloadEnd, span.from)
	}
	ws := faultWindows(c.faultRecs, runEnd)
	var windowDrift []DriftStats
	out.drifts, out.span = drifts, span
	for _, w := range ws {
		out.windows = append(out.windows, interval{w.from, w.to})
	}
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
	}{{"mean", s.Mean, slo.Mean.Duration}, {"p50", s.P50, slo.P50.Duration}, {"p90", s.P90, slo.P90.Duration}, {"p99", s.P99, slo.P99.Duration}, {"max", s.Max, slo.Max.Duration}} {
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
		fails = append(fails, fmt.Sprintf("%d truth changes never reflected in a reported value", s.Unresolved))
	}
	if s.Count == 0 && s.Unresolved == 0 {
		fails = append(fails, "no truth changed: nothing was measured")
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

// claimedWithin reports whether the truth was v at some moment in
// [at-bound, at].
func claimedWithin(ch []valueChange, at, bound time.Duration, v string) bool {
	from := at - bound
	i := sort.Search(len(ch), func(i int) bool { return ch[i].at > from })
	if i > 0 {
		i-- // the value in effect at the window's start
	}
	for ; i < len(ch) && ch[i].at <= at; i++ {
		if equal(v, ch[i].value) {
			return true
		}
	}
	return false
}

// valuesWithin lists the truths in effect during [at-bound, at].
func valuesWithin(ch []valueChange, at, bound time.Duration) []string {
	from := at - bound
	seen := map[string]bool{}
	var out []string
	i := sort.Search(len(ch), func(i int) bool { return ch[i].at > from })
	if i > 0 {
		i--
	}
	for ; i < len(ch) && ch[i].at <= at; i++ {
		if v := ch[i].value; !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
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

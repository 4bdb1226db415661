package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// PlaneStats is what the control plane and the operator's informers did in
// one stretch of a run (a fault window, or the time outside every window):
// aggregates of the once-a-second plane-sample records and of the
// operator's watch records. Peaks and means are over the samples taken in
// the stretch; counts are of what happened in it (counter deltas between
// consecutive samples whose interval overlaps it, records inside it).
type PlaneStats struct {
	// Seconds is the stretch's length, Samples the plane samples in it.
	Seconds float64 `json:"seconds"`
	Samples int     `json:"samples"`

	// SlowWatchersPeak and PendingEventsPeak are etcd's
	// etcd_debugging_mvcc_slow_watcher_total and
	// etcd_debugging_mvcc_pending_events_total: watchers whose events etcd
	// could not send, and the events waiting for them.
	SlowWatchersPeak  float64 `json:"etcd_slow_watchers_peak"`
	PendingEventsPeak float64 `json:"etcd_pending_events_peak"`
	// WatchCacheLag is etcd's current revision minus kube-apiserver's
	// watch cache resource version of the subject's resource, in
	// revisions: how far the apiserver's view is behind etcd (it also
	// counts writes to other resources since the subject's last event).
	WatchCacheLagPeak float64 `json:"watch_cache_lag_revisions_peak"`
	WatchCacheLagMean float64 `json:"watch_cache_lag_revisions_mean"`
	// TerminatedWatchers counts watchers kube-apiserver closed because
	// they could not keep up (apiserver_terminated_watchers_total).
	TerminatedWatchers float64 `json:"apiserver_terminated_watchers"`
	// WatchesPeak is the most watches kube-apiserver served at once.
	WatchesPeak float64 `json:"apiserver_watches_peak"`
	// ScrapeMaxMs is the slowest kube-apiserver /metrics scrape.
	ScrapeMaxMs float64 `json:"apiserver_scrape_max_ms"`
	// WAL fsyncs completed in the stretch, their mean and p99 duration
	// (etcd_disk_wal_fsync_duration_seconds; the p99 interpolated in its
	// buckets, as Prometheus' histogram_quantile does).
	Fsyncs      float64 `json:"wal_fsyncs"`
	FsyncMeanMs float64 `json:"wal_fsync_mean_ms"`
	FsyncP99Ms  float64 `json:"wal_fsync_p99_ms"`

	// WatchEnds counts the operator's watches that ended in the stretch,
	// by cause (watch-end records: timeout, terminated, connection-lost,
	// gone, error, stopped, refused); Relists its relists.
	WatchEnds map[string]int `json:"operator_watch_ends,omitempty"`
	Relists   int            `json:"operator_relists"`
}

// planeSample is one plane-sample record.
type planeSample struct {
	t time.Duration
	m map[string]float64
}

// span is a stretch of run time, [from, to].
type span struct{ from, to time.Duration }

func (s span) has(t time.Duration) bool { return t >= s.from && t <= s.to }

// PlaneOf aggregates the records for the stretches ws (one PlaneStats
// each) and for the time outside all of them within [from, to]; nil when
// the history has no plane samples.
func PlaneOf(recs []history.Record, ws []span, whole span) (perWindow []*PlaneStats, outside *PlaneStats) {
	var samples []planeSample
	for _, r := range recs {
		if r.Kind == history.KindPlaneSample && r.Metrics != nil {
			samples = append(samples, planeSample{r.T, r.Metrics})
		}
	}
	if len(samples) == 0 {
		return nil, nil
	}
	inAny := func(t time.Duration) bool {
		for _, w := range ws {
			if w.has(t) {
				return true
			}
		}
		return false
	}
	perWindow = make([]*PlaneStats, len(ws))
	for i, w := range ws {
		perWindow[i] = aggregate(recs, samples, func(t time.Duration) bool { return w.has(t) },
			func(a, b time.Duration) bool { return a < w.to && b > w.from }, w.to-w.from)
	}
	overlapsAny := func(a, b time.Duration) bool {
		for _, w := range ws {
			if a < w.to && b > w.from {
				return true
			}
		}
		return false
	}
	outsideLen := whole.to - whole.from
	for _, w := range ws {
		outsideLen -= max(0, min(w.to, whole.to)-max(w.from, whole.from))
	}
	outside = aggregate(recs, samples, func(t time.Duration) bool { return whole.has(t) && !inAny(t) },
		func(a, b time.Duration) bool { return a >= whole.from && b <= whole.to && !overlapsAny(a, b) }, max(outsideLen, 0))
	return perWindow, outside
}

// aggregate computes one PlaneStats: at tells whether an instant is in
// the stretch (gauges, records), during whether the interval between two
// consecutive samples is (counter deltas).
func aggregate(recs []history.Record, samples []planeSample, at func(time.Duration) bool, during func(a, b time.Duration) bool, length time.Duration) *PlaneStats {
	st := &PlaneStats{Seconds: length.Seconds()}
	var lagSum float64
	lagN := 0
	for _, s := range samples {
		if !at(s.t) {
			continue
		}
		st.Samples++
		st.SlowWatchersPeak = max(st.SlowWatchersPeak, s.m["etcd_slow_watchers"])
		st.PendingEventsPeak = max(st.PendingEventsPeak, s.m["etcd_pending_events"])
		st.WatchesPeak = max(st.WatchesPeak, s.m["apiserver_watches"])
		st.ScrapeMaxMs = max(st.ScrapeMaxMs, s.m["apiserver_scrape_ms"])
		if lag, ok := s.m["watch_cache_lag"]; ok {
			st.WatchCacheLagPeak = max(st.WatchCacheLagPeak, lag)
			lagSum += lag
			lagN++
		}
	}
	if lagN > 0 {
		st.WatchCacheLagMean = lagSum / float64(lagN)
	}
	// Counters: the deltas of the intervals in the stretch. A counter that
	// went down (a restarted apiserver) counts from zero again.
	delta := func(a, b map[string]float64, k string) float64 {
		va, oka := a[k]
		vb, okb := b[k]
		if !oka || !okb {
			return 0
		}
		if vb < va {
			return vb
		}
		return vb - va
	}
	buckets := map[float64]float64{}
	var fsyncSum float64
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if !during(a.t, b.t) {
			continue
		}
		st.TerminatedWatchers += delta(a.m, b.m, "apiserver_terminated_watchers")
		st.Fsyncs += delta(a.m, b.m, "wal_fsync_count")
		fsyncSum += delta(a.m, b.m, "wal_fsync_sum")
		for k := range b.m {
			if le, ok := strings.CutPrefix(k, "wal_fsync_le:"); ok {
				if ub, err := strconv.ParseFloat(le, 64); err == nil {
					buckets[ub] += delta(a.m, b.m, k)
				}
			}
		}
	}
	if st.Fsyncs > 0 {
		st.FsyncMeanMs = fsyncSum / st.Fsyncs * 1000
		st.FsyncP99Ms = bucketQuantile(0.99, buckets) * 1000
	}
	for _, r := range recs {
		if r.Source != history.SourceOperator || !at(r.T) {
			continue
		}
		switch r.Kind {
		case history.KindWatchEnd:
			if st.WatchEnds == nil {
				st.WatchEnds = map[string]int{}
			}
			st.WatchEnds[r.Op]++
		case history.KindRelist:
			st.Relists++
		}
	}
	return st
}

// bucketQuantile is Prometheus' histogram_quantile over cumulative bucket
// counts keyed by upper bound: linear interpolation inside the bucket the
// quantile falls in (the lowest bucket from 0); a quantile in the +Inf
// bucket is the highest finite bound.
func bucketQuantile(q float64, cum map[float64]float64) float64 {
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := cum[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := cum[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			if c == prevCount {
				return b
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, c
	}
	return prevBound
}

// SetPlane puts the plane statistics into the summary: per fault window
// (FaultResult.Plane, for faults that ran) and outside every window
// (Summary.PlaneOutside), over the run from the workload's start to its
// convergence (or the last sample). It does nothing for a history without
// plane samples.
func SetPlane(s *Summary, recs []history.Record) {
	var start, end time.Duration = -1, -1
	var lastSample time.Duration
	for _, r := range recs {
		switch r.Kind {
		case history.KindWorkloadStart:
			if start < 0 {
				start = r.T
			}
		case history.KindConverged:
			end = r.T
		case history.KindPlaneSample:
			lastSample = r.T
		}
	}
	if start < 0 {
		start = 0
	}
	if end < 0 {
		end = lastSample
	}
	var ws []span
	var idx []int
	for i, f := range s.Faults {
		if f.Window == nil {
			continue
		}
		ws = append(ws, span{time.Duration(f.Window.StartMs * float64(time.Millisecond)), time.Duration(f.Window.EndMs * float64(time.Millisecond))})
		idx = append(idx, i)
	}
	per, out := PlaneOf(recs, ws, span{start, max(end, start)})
	if out == nil {
		return
	}
	for k, i := range idx {
		s.Faults[i].Plane = per[k]
	}
	s.PlaneOutside = out
}

// planeLine is a PlaneStats for people. Without plane samples (the
// virtual backend models no control-plane metrics) it is the operator's
// watches alone.
func planeLine(p *PlaneStats) string {
	if p.Samples == 0 {
		return operatorWatchLine(p)
	}
	parts := []string{
		fmt.Sprintf("etcd slow watchers peak %.0f, pending events peak %.0f", p.SlowWatchersPeak, p.PendingEventsPeak),
		fmt.Sprintf("watch-cache lag peak %.0f (mean %.1f) revisions", p.WatchCacheLagPeak, p.WatchCacheLagMean),
		fmt.Sprintf("terminated watchers %.0f", p.TerminatedWatchers),
		fmt.Sprintf("WAL fsync mean %.1fms p99 %.1fms (%.0f)", p.FsyncMeanMs, p.FsyncP99Ms, p.Fsyncs),
	}
	return strings.Join(append(parts, operatorWatchLine(p)), "; ") + fmt.Sprintf(" [%d samples, %.0fs]", p.Samples, p.Seconds)
}

// operatorWatchLine is the operator's relists and watch ends by cause.
func operatorWatchLine(p *PlaneStats) string {
	op := fmt.Sprintf("operator relists %d", p.Relists)
	if len(p.WatchEnds) > 0 {
		causes := make([]string, 0, len(p.WatchEnds))
		for c := range p.WatchEnds {
			causes = append(causes, c)
		}
		sort.Strings(causes)
		var ends []string
		for _, c := range causes {
			ends = append(ends, fmt.Sprintf("%s %d", c, p.WatchEnds[c]))
		}
		op += ", watch ends: " + strings.Join(ends, ", ")
	}
	return op
}

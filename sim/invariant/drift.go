package invariant

import (
	"cmp"
	"slices"
	"time"
)

// DriftStats is how long the objects' reported values disagreed with the
// truth over a span of a run: an object drifts from the moment one of its
// properties' reported value stops matching its truth (a new object until
// the operator first reports) until all match again. Unlike the latency
// samples, which exist only when a truth changes, drift integrates over
// every change the workload makes, so it measures a fault's effect even
// when few truths change in its window.
type DriftStats struct {
	// ObjectMs is the sum over objects of the time each was out of sync
	// within the span, in milliseconds.
	ObjectMs float64 `json:"object_ms"`
	// SpanMs is the length of the span in milliseconds.
	SpanMs float64 `json:"span_ms"`
	// MeanObjects is ObjectMs/SpanMs: the mean number of objects out of
	// sync during the span.
	MeanObjects float64 `json:"mean_objects"`
	// LongestMs is the longest single out-of-sync interval that overlaps
	// the span (its whole length, also the part outside the span).
	LongestMs float64 `json:"longest_ms"`
}

// DriftOver measures drift over [from, to) of the run: for comparing
// stretches other than the fault windows (before a fault and after it).
func (o *Outcome) DriftOver(from, to time.Duration) DriftStats {
	return driftOver(o.drifts, interval{from, max(from, to)})
}

// InSyncFrom is the first moment at or after t when no object is out of
// sync: t itself when none is then.
func (o *Outcome) InSyncFrom(t time.Duration) time.Duration {
	for moved := true; moved; {
		moved = false
		for _, d := range o.drifts {
			if d.from <= t && t < d.to {
				t, moved = d.to, true
			}
		}
	}
	return t
}

// OutsideDriftAfterRecovery is OutsideDrift without each fault window's
// aftermath: the stretch from the window's end until no object is out of
// sync any more (InSyncFrom). A fault that leaves a backlog (delayed
// fsyncs queued in etcd, a watcher storm's catch-up) keeps objects out of
// sync past its window, on a loaded machine for seconds; that is the
// fault's effect, and counted outside it makes a fault look weaker the
// slower the machine is.
func (o *Outcome) OutsideDriftAfterRecovery() DriftStats {
	cuts := make([]interval, 0, len(o.windows))
	for _, w := range o.windows {
		cuts = append(cuts, interval{w.from, max(w.to, min(o.InSyncFrom(w.to), o.span.to))})
	}
	rest, restLen := uncovered(o.span, cuts)
	return driftIn(o.drifts, rest, restLen)
}

// driftOver is drift over one stretch of the run.
func driftOver(drifts []interval, iv interval) DriftStats {
	return driftIn(drifts, []interval{iv}, iv.to-iv.from)
}

// interval is [from, to) in run time.
type interval struct{ from, to time.Duration }

func overlap(a, b interval) time.Duration {
	return max(0, min(a.to, b.to)-max(a.from, b.from))
}

// driftIn sums the drift intervals over the parts of span covered by
// the sorted, disjoint intervals cover.
func driftIn(drifts []interval, cover []interval, span time.Duration) DriftStats {
	var sum, longest time.Duration
	for _, d := range drifts {
		hit := false
		for _, c := range cover {
			if o := overlap(d, c); o > 0 {
				sum += o
				hit = true
			}
		}
		if hit {
			longest = max(longest, d.to-d.from)
		}
	}
	s := DriftStats{ObjectMs: ms(sum), SpanMs: ms(span), LongestMs: ms(longest)}
	if span > 0 {
		s.MeanObjects = float64(sum) / float64(span)
	}
	return s
}

// splitDrift measures drift over the whole span, inside each window, and
// over the part of the span no window covers.
func splitDrift(drifts []interval, span interval, ws []window) (all DriftStats, in []DriftStats, outside DriftStats) {
	all = driftOver(drifts, span)
	in = make([]DriftStats, len(ws))
	for i, w := range ws {
		in[i] = driftOver(drifts, interval{w.from, w.to})
	}
	cuts := make([]interval, 0, len(ws))
	for _, w := range ws {
		cuts = append(cuts, interval{w.from, w.to})
	}
	rest, restLen := uncovered(span, cuts)
	outside = driftIn(drifts, rest, restLen)
	return all, in, outside
}

// uncovered is span minus the union of cuts, as sorted disjoint pieces,
// and their total length.
func uncovered(span interval, cuts []interval) ([]interval, time.Duration) {
	cuts = slices.Clone(cuts)
	slices.SortFunc(cuts, func(a, b interval) int { return cmp.Compare(a.from, b.from) })
	var rest []interval
	var restLen time.Duration
	at := span.from
	for _, c := range cuts {
		if c.from > at {
			piece := interval{at, min(c.from, span.to)}
			if piece.to > piece.from {
				rest = append(rest, piece)
				restLen += piece.to - piece.from
			}
		}
		at = max(at, c.to)
	}
	if at < span.to {
		rest = append(rest, interval{at, span.to})
		restLen += span.to - at
	}
	return rest, restLen
}

package promread

import (
	"math"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metric returns the value of a gauge or counter (summed over its label
// sets), or the sum and count of a histogram. ok is false when the metric
// is not registered.
func Metric(name string) (value float64, count uint64, ok bool) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0, 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				value += m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				value += m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				value += m.GetHistogram().GetSampleSum()
				count += m.GetHistogram().GetSampleCount()
			}
		}
		return value, count, true
	}
	return 0, 0, false
}

// Snapshot reads several metrics at once into a flat map: gauges and
// counters by name, histograms as name_sum and name_count.
func Snapshot(names ...string) map[string]float64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if !want[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[mf.GetName()] += m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[mf.GetName()] += m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_sum"] += m.GetHistogram().GetSampleSum()
				out[mf.GetName()+"_count"] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Bucket is one cumulative bucket of a histogram: Count observations were
// at most UpperBound.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Buckets returns a histogram's cumulative buckets, summed over its label
// sets and sorted by bound (the +Inf bucket last), or false when the
// histogram is not registered.
func Buckets(name string) ([]Bucket, bool) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return nil, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name || mf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		sum := map[float64]uint64{}
		var total uint64
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				sum[b.GetUpperBound()] += b.GetCumulativeCount()
			}
			total += h.GetSampleCount()
		}
		out := make([]Bucket, 0, len(sum)+1)
		for ub, c := range sum {
			out = append(out, Bucket{UpperBound: ub, Count: c})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].UpperBound < out[j].UpperBound })
		if len(out) == 0 || !math.IsInf(out[len(out)-1].UpperBound, 1) {
			out = append(out, Bucket{UpperBound: math.Inf(1), Count: total})
		}
		return out, true
	}
	return nil, false
}

package harness

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/driftlab/driftlab/faults"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// scheduler starts and stops a run's faults at their windows and records
// each boundary with the metrics around it.
type scheduler struct {
	specs []scenarios.Fault
	built map[int]faults.Fault
	rec   *history.Recorder
	// metrics reads the backend's metrics at each boundary (etcd's on the
	// local backend); nil reads none. send asks the operator for a
	// runtime sample; nil when it takes no commands.
	metrics func() map[string]float64
	send    func(cmd any) error

	mu      sync.Mutex
	active  map[int]bool
	results map[int]*faultOutcome
	wg      sync.WaitGroup
	stopAll chan struct{}
	wlEnd   chan struct{}
	once    sync.Once
	wlOnce  sync.Once
	ops     int
	opCond  *sync.Cond
}

type faultOutcome struct {
	started, stopped bool
	err              string
	effect           map[string]float64
}

func newScheduler(specs []scenarios.Fault, built map[int]faults.Fault, rec *history.Recorder, metrics func() map[string]float64, send func(any) error) *scheduler {
	s := &scheduler{specs: specs, built: built, rec: rec, metrics: metrics, send: send, active: map[int]bool{}, results: map[int]*faultOutcome{}, stopAll: make(chan struct{}), wlEnd: make(chan struct{})}
	s.opCond = sync.NewCond(&s.mu)
	return s
}

// opDone counts a finished workload operation.
func (s *scheduler) opDone() {
	s.mu.Lock()
	s.ops++
	s.mu.Unlock()
	s.opCond.Broadcast()
}

// sample records the backend's metrics and asks the operator for a
// runtime sample.
func (s *scheduler) sample(tag string) {
	if s.metrics != nil {
		s.rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindEtcdMetrics, Detail: tag, Metrics: s.metrics()})
	}
	if s.send != nil {
		_ = s.send(faults.Command{Cmd: faults.CmdRuntimeSample, Tag: tag})
	}
}

// start launches one goroutine per fault; workloadStart is time zero of
// the fault schedule.
func (s *scheduler) start(ctx context.Context, workloadStart time.Time) {
	for _, i := range slices.Sorted(maps.Keys(s.built)) {
		s.wg.Add(1)
		go s.run(ctx, i, workloadStart)
	}
}

func (s *scheduler) waitOps(ctx context.Context, n int) bool {
	done := make(chan struct{})
	go func() {
		s.mu.Lock()
		for s.ops < n {
			select {
			case <-s.stopAll:
				s.mu.Unlock()
				close(done)
				return
			default:
			}
			s.opCond.Wait()
		}
		s.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	case <-s.stopAll:
	}
	return ctx.Err() == nil && !s.stopping()
}

func (s *scheduler) stopping() bool {
	select {
	case <-s.stopAll:
		return true
	default:
		return false
	}
}

func (s *scheduler) run(ctx context.Context, i int, t0 time.Time) {
	defer s.wg.Done()
	spec := s.specs[i]
	f := s.built[i]
	if spec.AfterOps > 0 {
		if !s.waitOps(ctx, spec.AfterOps) {
			return
		}
	} else if !sleepUntil(ctx, s.stopAll, t0.Add(spec.Start.Duration)) {
		return
	}
	tag := strconv.Itoa(i)
	s.sample("start:" + tag)
	out := &faultOutcome{}
	s.mu.Lock()
	s.results[i] = out
	s.mu.Unlock()
	if err := f.Start(ctx); err != nil {
		out.err = err.Error()
		s.rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindFaultStart, Op: spec.Type, Detail: tag, Err: err.Error()})
		_ = f.Stop(context.Background())
		return
	}
	out.started = true
	s.mu.Lock()
	s.active[i] = true
	s.mu.Unlock()
	s.rec.Add(history.Record{Source: history.SourceHarness, Kind: history.KindFaultStart, Op: spec.Type, Detail: tag})
	if spec.Duration.Duration > 0 {
		sleepUntil(ctx, s.stopAll, time.Now().Add(spec.Duration.Duration))
	} else {
		select { // "to the end": until the workload ends
		case <-ctx.Done():
		case <-s.stopAll:
		case <-s.wlEnd:
		}
	}
	s.stopOne(i)
}

// stopOne stops fault i if it is active and records the boundary.
func (s *scheduler) stopOne(i int) {
	s.mu.Lock()
	if !s.active[i] {
		s.mu.Unlock()
		return
	}
	delete(s.active, i)
	out := s.results[i]
	s.mu.Unlock()
	f, spec, tag := s.built[i], s.specs[i], strconv.Itoa(i)
	err := f.Stop(context.Background())
	out.stopped = true
	out.effect = f.Effect()
	r := history.Record{Source: history.SourceHarness, Kind: history.KindFaultStop, Op: spec.Type, Detail: tag, Metrics: out.effect}
	if err != nil {
		r.Err = err.Error()
		out.err = err.Error()
	}
	s.rec.Add(r)
	s.sample("stop:" + tag)
}

// workloadEnded stops the faults that run to the end of the workload.
func (s *scheduler) workloadEnded() { s.wlOnce.Do(func() { close(s.wlEnd) }) }

// stop ends every fault still running (runs "to the end") and waits for the
// schedule goroutines.
func (s *scheduler) stop() {
	s.once.Do(func() { close(s.stopAll) })
	s.opCond.Broadcast()
	s.wg.Wait()
}

func sleepUntil(ctx context.Context, stop <-chan struct{}, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// outcome returns what happened to fault i.
func (s *scheduler) outcome(i int) (faultOutcome, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.results[i]
	if !ok {
		return faultOutcome{}, false
	}
	return *o, true
}

// faultResults turns the schedule's outcome into the summary's fault list;
// effects, when set, adds what the backend reads of a fault's effect from
// the history.
func faultResults(specs []scenarios.Fault, skipped map[int]string, s *scheduler, out *invariant.Outcome, recs []history.Record,
	effects func(*report.FaultResult, scenarios.Fault, []history.Record)) []report.FaultResult {
	res := make([]report.FaultResult, len(specs))
	for i, spec := range specs {
		r := report.FaultResult{Index: i, Type: spec.Type, Schedule: spec.Describe()}
		if reason, ok := skipped[i]; ok {
			r.Skipped = reason
		} else if s == nil {
			r.Error = "the run ended before faults were scheduled"
		} else if o, ok := s.outcome(i); !ok {
			r.Error = "never started (the run ended first)"
		} else {
			r.Error, r.Effect = o.err, o.effect
		}
		for _, w := range out.Windows {
			if w.Index == i {
				w := w
				r.Window = &w
			}
		}
		if spec.Type == scenarios.FaultGCAssistPressure {
			addRuntimeEffect(&r, recs, i)
		}
		if effects != nil {
			effects(&r, spec, recs)
		}
		res[i] = r
	}
	return res
}

// addRuntimeEffect adds the operator's runtime metrics in the window
// against the stretch before it: the samples tagged start:i (covering the
// time up to the window) and stop:i (covering the window).
func addRuntimeEffect(r *report.FaultResult, recs []history.Record, i int) {
	var before, during map[string]float64
	for _, rec := range recs {
		if rec.Kind != history.KindRuntime || rec.Err != "" {
			continue
		}
		switch rec.Detail {
		case "start:" + strconv.Itoa(i):
			before = rec.Metrics
		case "stop:" + strconv.Itoa(i):
			during = rec.Metrics
		}
	}
	if before == nil || during == nil {
		return
	}
	if r.Effect == nil {
		r.Effect = map[string]float64{}
	}
	perSec := func(m map[string]float64, k string) float64 {
		if m["window_seconds"] <= 0 {
			return 0
		}
		return m[k] / m["window_seconds"]
	}
	r.Effect["gc_assist_cpu_per_s_before"] = perSec(before, "gc_assist_cpu_seconds")
	r.Effect["gc_assist_cpu_per_s"] = perSec(during, "gc_assist_cpu_seconds")
	r.Effect["gc_cpu_per_s_before"] = perSec(before, "gc_total_cpu_seconds")
	r.Effect["gc_cpu_per_s"] = perSec(during, "gc_total_cpu_seconds")
	r.Effect["sched_latency_p99_ms_before"] = before["sched_latency_p99_seconds"] * 1000
	r.Effect["sched_latency_p99_ms"] = during["sched_latency_p99_seconds"] * 1000
	r.Effect["sched_latency_max_ms_before"] = before["sched_latency_max_seconds"] * 1000
	r.Effect["sched_latency_max_ms"] = during["sched_latency_max_seconds"] * 1000
	r.Effect["sched_slow_per_s_before"] = perSec(before, "sched_slow_events")
	r.Effect["sched_slow_per_s"] = perSec(during, "sched_slow_events")
}

// keyMetrics sums up the metrics sampled during a run (workload start to
// end) for the summary: etcd's WAL fsync and backend commit means, puts,
// the peak of slow watchers seen at a boundary, and the operator's GC time.
func keyMetrics(recs []history.Record) map[string]float64 {
	var first, last map[string]float64
	out := map[string]float64{}
	for _, r := range recs {
		switch r.Kind {
		case history.KindEtcdMetrics:
			if first == nil {
				first = r.Metrics
			}
			last = r.Metrics
			if v := r.Metrics["etcd_debugging_mvcc_slow_watcher_total"]; v > out["etcd_slow_watchers_peak"] {
				out["etcd_slow_watchers_peak"] = v
			}
		case history.KindRuntime:
			if r.Err == "" {
				out["operator_gc_assist_cpu_seconds"] += r.Metrics["gc_assist_cpu_seconds"]
				out["operator_gc_total_cpu_seconds"] += r.Metrics["gc_total_cpu_seconds"]
				out["operator_gc_cycles"] += r.Metrics["gc_cycles"]
			}
		}
	}
	if first == nil || last == nil {
		return out
	}
	mean := func(name string) float64 {
		n := last[name+"_count"] - first[name+"_count"]
		if n <= 0 {
			return 0
		}
		return (last[name+"_sum"] - first[name+"_sum"]) / n * 1000
	}
	out["etcd_wal_fsync_mean_ms"] = mean("etcd_disk_wal_fsync_duration_seconds")
	out["etcd_backend_commit_mean_ms"] = mean("etcd_disk_backend_commit_duration_seconds")
	out["etcd_puts"] = last["etcd_mvcc_put_total"] - first["etcd_mvcc_put_total"]
	return out
}

package cluster

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

// windowScheduler records fault-start and fault-stop for each fault the
// chaos objects inject, at the scenario's times from the workload start
// (Chaos Mesh runs the faults; these records put their windows in the
// history, so the latency inside and outside them is reported).
type windowScheduler struct {
	mu     sync.Mutex
	open   map[int]string // fault index -> type, started and not stopped
	add    func(history.Record)
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startWindows(ctx context.Context, s *scenarios.Scenario, cover map[int]bool, t0 time.Time, add func(history.Record)) *windowScheduler {
	ctx, cancel := context.WithCancel(ctx)
	w := &windowScheduler{open: map[int]string{}, add: add, cancel: cancel}
	for i, f := range s.Faults {
		if !cover[i] || f.AfterOps > 0 {
			continue
		}
		w.wg.Add(1)
		go func(i int, f scenarios.Fault) {
			defer w.wg.Done()
			if !sleepUntil(ctx, t0.Add(f.Start.Duration)) {
				return
			}
			w.mu.Lock()
			w.open[i] = f.Type
			w.mu.Unlock()
			add(history.Record{Source: history.SourceHarness, Kind: history.KindFaultStart, Op: f.Type, Detail: strconv.Itoa(i)})
			if f.Duration.Duration == 0 || !sleepUntil(ctx, t0.Add(f.Start.Duration+f.Duration.Duration)) {
				return // stopped with the workload or the run
			}
			w.stopOne(i)
		}(i, f)
	}
	return w
}

func (w *windowScheduler) stopOne(i int) {
	w.mu.Lock()
	typ, ok := w.open[i]
	delete(w.open, i)
	w.mu.Unlock()
	if ok {
		w.add(history.Record{Source: history.SourceHarness, Kind: history.KindFaultStop, Op: typ, Detail: strconv.Itoa(i)})
	}
}

// workloadEnded stops the windows that last until the workload ends, as
// the export gives them a deadline of the workload's end.
func (w *windowScheduler) workloadEnded() {
	w.mu.Lock()
	var idx []int
	for i := range w.open {
		idx = append(idx, i)
	}
	w.mu.Unlock()
	sort.Ints(idx)
	for _, i := range idx {
		w.stopOne(i)
	}
}

func (w *windowScheduler) stop() {
	w.cancel()
	w.wg.Wait()
	w.workloadEnded()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// faultResults reports each fault of the scenario: its window when the
// chaos objects inject it, otherwise skipped with the reason.
func faultResults(s *scenarios.Scenario, haveChaos bool, cover map[int]bool, out *invariant.Outcome) []report.FaultResult {
	res := make([]report.FaultResult, len(s.Faults))
	for i := range s.Faults {
		f := &s.Faults[i]
		r := report.FaultResult{Index: i, Type: f.Type, Schedule: f.Describe()}
		switch {
		case !haveChaos:
			r.Skipped = "the cluster backend injects no faults itself: export them (driftlab chaos export) and pass the file with --chaos"
		case !cover[i]:
			r.Skipped = "not in the chaos objects (driftlab chaos export lists why it skipped it)"
		case f.AfterOps > 0:
			r.Skipped = "afterOps schedules are not exported"
		}
		for _, w := range out.Windows {
			if w.Index == i {
				w := w
				r.Window = &w
			}
		}
		if r.Skipped == "" && r.Window == nil {
			r.Error = "its window never started (the run ended first)"
		}
		res[i] = r
	}
	return res
}

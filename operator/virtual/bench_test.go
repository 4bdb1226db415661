package virtual

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBaseline runs the built-in baseline scenario with a 60-second
// workload (the target case) on a new seed per iteration, and
// reports:
//
//   - sim-s/wall-s: simulated seconds per wall second (target >= 10,000);
//   - sim-s/CPU-s: the same per second of process CPU time (user + system,
//     GC included), which a loaded machine does not distort;
//   - runs/CPU-h: runs per hour of process CPU time (target >= 100,000);
//   - allocs/event: heap allocations per kernel event.
//
// It runs three times: gogc=default is the Go default a library user gets
// (or the GOGC in the environment), with the run's records returned;
// gogc=1600 is what driftlab sweep and shrink set for their process
// (ManyRunsGCPercent); gogc=1600,verdict is a run as sweep, shrink and the
// matrix make it, with Options.Verdict (no records returned).
func BenchmarkBaseline(b *testing.B) {
	b.Run("gogc=default", func(b *testing.B) { benchmarkBaseline(b, Options{}) })
	many := fmt.Sprintf("gogc=%d", ManyRunsGCPercent)
	b.Run(many, func(b *testing.B) {
		defer debug.SetGCPercent(debug.SetGCPercent(ManyRunsGCPercent))
		benchmarkBaseline(b, Options{})
	})
	b.Run(many+",verdict", func(b *testing.B) {
		defer debug.SetGCPercent(debug.SetGCPercent(ManyRunsGCPercent))
		benchmarkBaseline(b, Options{Verdict: true})
	})
}

func benchmarkBaseline(b *testing.B, o Options) {
	s := baseline(b, 1)
	s.Workload.Duration.Duration = 60 * time.Second
	var sim time.Duration
	var events int
	var ms0, ms1 runtime.MemStats
	b.ReportAllocs()
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Seed = uint64(i + 1)
		res, err := Run(s, o)
		if err != nil {
			b.Fatal(err)
		}
		sim += res.SimTime
		events += res.Events
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	wall := b.Elapsed()
	b.ReportMetric(sim.Seconds()/wall.Seconds(), "sim-s/wall-s")
	b.ReportMetric(sim.Seconds()/cpu.Seconds(), "sim-s/CPU-s")
	b.ReportMetric(float64(b.N)/cpu.Hours(), "runs/CPU-h")
	b.ReportMetric(float64(events)/float64(b.N), "events/run")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(events), "allocs/event")
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

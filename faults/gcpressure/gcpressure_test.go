package gcpressure

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// sleepers keeps goroutines waking up every millisecond so that the
// scheduler records latencies, like an operator's many small goroutines.
func sleepers(stop <-chan struct{}, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
					buf = append(buf[:0], make([]byte, 32)...) // a little allocation, as real code does
				}
			}
		}()
	}
	return &wg
}

func window(d time.Duration, pressure *Config) (Delta, int64) {
	stop := make(chan struct{})
	wg := sleepers(stop, 16)
	var p *Pressure
	if pressure != nil {
		p = Start(*pressure)
	}
	a := Read()
	time.Sleep(d)
	b := Read()
	var cycles int64
	if p != nil {
		cycles = p.Cycles()
		p.Stop()
	}
	close(stop)
	wg.Wait()
	runtime.GC()
	return Sub(a, b), cycles
}

// TestPressureRaisesAssistAndSchedulingLatency is the fault's effect, read
// from runtime/metrics: GC assist CPU and scheduling latency rise versus a
// baseline window of the same length, and fall back after Stop.
func TestPressureRaisesAssistAndSchedulingLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the runtime for seconds; skipped with -short")
	}
	base, _ := window(1500*time.Millisecond, nil)
	under, cycles := window(1500*time.Millisecond, &Config{Entries: 200000, Rate: 4})
	after, _ := window(1500*time.Millisecond, nil)
	t.Logf("baseline: assist %.4fs, gc %.4fs, %d cycles, sched p99 %.3fms max %.3fms", base.AssistCPU, base.GCCPU, base.GCCycles, base.SchedP99*1e3, base.SchedMax*1e3)
	t.Logf("pressure: assist %.4fs, gc %.4fs, %d cycles, sched p99 %.3fms max %.3fms (%d grow+copy cycles)", under.AssistCPU, under.GCCPU, under.GCCycles, under.SchedP99*1e3, under.SchedMax*1e3, cycles)
	t.Logf("after:    assist %.4fs, gc %.4fs, %d cycles, sched p99 %.3fms", after.AssistCPU, after.GCCPU, after.GCCycles, after.SchedP99*1e3)
	if cycles == 0 {
		t.Fatal("the pressure goroutine ran no cycle")
	}
	if under.AssistCPU <= 2*base.AssistCPU || under.AssistCPU < 0.005 {
		t.Errorf("GC assist CPU did not rise: %.4fs under pressure vs %.4fs baseline", under.AssistCPU, base.AssistCPU)
	}
	t.Logf("scheduling delays >= 1ms: %d baseline, %d under pressure, %d after", base.SchedSlow, under.SchedSlow, after.SchedSlow)
	// The count of delays, not the longest one: on a loaded machine one
	// hiccup of another process (33 ms) made the baseline's maximum larger
	// than the pressure window's. The count at least doubles, by at least 4.
	if under.SchedSlow < 2*base.SchedSlow+4 {
		t.Errorf("scheduling latency did not rise: %d delays >= 1ms (max %.3fms) vs %d (max %.3fms) in the baseline window",
			under.SchedSlow, under.SchedMax*1e3, base.SchedSlow, base.SchedMax*1e3)
	}
	if after.AssistCPU > under.AssistCPU/2 {
		t.Errorf("assist CPU stayed high after Stop: %.4fs vs %.4fs under pressure", after.AssistCPU, under.AssistCPU)
	}
}

func TestSubQuantiles(t *testing.T) {
	a := Read()
	time.Sleep(10 * time.Millisecond)
	b := Read()
	d := Sub(a, b)
	if d.Seconds <= 0 || d.SchedP50 > d.SchedP99 || d.SchedP99 > d.SchedMax && d.SchedMax != 0 {
		t.Fatalf("inconsistent delta: %+v", d)
	}
}

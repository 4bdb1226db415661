package fsyncfs

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// injection is the outcome of measureInjection.
type injection struct {
	calls    int
	baseline time.Duration // median fsync time seen by the caller, delay off
	overhead time.Duration // median of (caller time - backing fsync time), delay off
	// spread is the p90 - p50 of those undelayed overheads: the run's own
	// scheduling noise, which a loaded machine raises.
	spread   time.Duration
	injected time.Duration // sum of the delays drawn (Stats.Injected)
	slept    time.Duration // sum of the time the server waited (Stats.Slept)
	measured time.Duration // sum of (caller's fsync time - baseline)
	// errs holds, per delayed call, the delay the caller saw minus the
	// delay drawn: (caller time - that call's backing fsync time -
	// overhead) - drawn delay. Taking out the backing fsync time keeps the
	// disk's own variance out of the comparison.
	errs []time.Duration
	// Per delayed call, for a loaded machine, where a sleeping thread
	// wakes late: vsSlept is errs against the time the server slept
	// instead of the delay drawn (what the FUSE path adds), over is how
	// long the server slept past the drawn delay, and control how long a
	// time.Sleep of the same delay in the caller overslept right after it
	// (the machine's own wake-up latency at that moment).
	vsSlept, over, control []time.Duration
	early                  int // delayed calls whose server slept less than drawn
}

// ratio is the end-to-end ratio measured / injected.
func (r injection) ratio() float64 { return float64(r.measured) / float64(r.injected) }

// medianErr is the median per-call error.
func (r injection) medianErr() time.Duration { return median(r.errs) }

// overshoot is the mean time the server waited beyond the drawn delay.
func (r injection) overshoot() time.Duration {
	return (r.slept - r.injected) / time.Duration(max(len(r.errs), 1))
}

// measureInjection compares the delay the mount says it injected with the
// delay a caller sees. It times 15 fsyncs with the delay off for a baseline,
// then, with d, times n fsyncs one at a time and attributes to each the
// change in Stats.Injected and Stats.Backend.
func measureInjection(tb testing.TB, m *Mount, f *os.File, d Delay, n int, control bool) injection {
	tb.Helper()
	buf := make([]byte, 4096)
	type call struct{ took, inj, slept, backend time.Duration }
	sync := func() call {
		if _, err := f.Write(buf); err != nil {
			tb.Fatal(err)
		}
		before := m.Stats()
		t0 := time.Now()
		if err := f.Sync(); err != nil {
			tb.Fatal(err)
		}
		took := time.Since(t0)
		after := m.Stats()
		return call{took, after.Injected - before.Injected, after.Slept - before.Slept, after.Backend - before.Backend}
	}
	if err := m.SetDelay(Delay{}); err != nil {
		tb.Fatal(err)
	}
	var tooks, overheads []time.Duration
	for range 15 {
		c := sync()
		tooks = append(tooks, c.took)
		overheads = append(overheads, c.took-c.backend)
	}
	slices.Sort(overheads)
	r := injection{calls: n, baseline: median(tooks), overhead: median(overheads), spread: overheads[len(overheads)*9/10] - median(overheads)}
	if err := m.SetDelay(d); err != nil {
		tb.Fatal(err)
	}
	defer m.SetDelay(Delay{})
	for range n {
		c := sync()
		r.injected += c.inj
		r.slept += c.slept
		r.measured += c.took - r.baseline
		if c.inj > 0 {
			r.errs = append(r.errs, c.took-c.backend-r.overhead-c.inj)
			r.vsSlept = append(r.vsSlept, c.took-c.backend-r.overhead-c.slept)
			r.over = append(r.over, c.slept-c.inj)
			if c.slept < c.inj {
				r.early++
			}
			if control {
				t0 := time.Now()
				time.Sleep(c.inj)
				r.control = append(r.control, time.Since(t0)-c.inj)
			}
		}
	}
	return r
}

// TestInjectedVsMeasured: the project's target is measured delay within 5%
// or 2 ms of the injected delay, plus this run's own scheduling noise (the
// spread of its undelayed fsyncs' overhead), which a loaded machine raises
// and which is there with or without a delay.
//
// Under load a sleeping thread also wakes late: with two CPU hogs and a
// test suite beside it the server overslept a 100 ms delay by 22 ms, and
// the caller saw it. That lateness is the machine's, so it is measured in
// the same run: right after each delayed fsync the test sleeps the same
// delay itself. The server must never sleep less than drawn, oversleep
// (median) at most the target more than the test's own sleeps, and the
// caller must see what the server slept within the target. Per call the
// error against the injected delay is the sum of those two parts; it is
// logged, not asserted as a whole, since a median of sums is not the sum
// of the medians (beside two CPU hogs and a test suite: 3.27 ms against
// parts of 0.26 and 1.33 ms, with the undelayed fsync at 11.6 ms).
func TestInjectedVsMeasured(t *testing.T) {
	m, _, mnt := mountT(t, 21)
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, d := range []Delay{
		{Base: 5 * time.Millisecond},
		{Base: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Probability: 0.7},
		{Base: 100 * time.Millisecond},
	} {
		r := measureInjection(t, m, f, d, 12, true)
		meanInj := r.injected / time.Duration(len(r.errs))
		tol := max(time.Duration(0.05*float64(meanInj)), 2*time.Millisecond) + r.spread
		late := max(median(r.control), 0)
		t.Logf("delay %v: %d delayed of %d; injected %.2f ms/delayed call; end to end: baseline %.3f ms, measured/injected %.4f; per call (medians): error %.3f ms, against the server's sleep %.3f ms (tolerance %.2f ms); server overslept %.3f ms, the test's own sleeps %.3f ms",
			d, len(r.errs), r.calls, ms(meanInj), ms(r.baseline), r.ratio(), ms(r.medianErr()), ms(median(r.vsSlept)), ms(tol), ms(median(r.over)), ms(late))
		if r.early > 0 {
			t.Errorf("delay %v: the server slept less than drawn in %d calls", d, r.early)
		}
		if o := median(r.over); o > tol+late {
			t.Errorf("delay %v: the server overslept %v (median), more than %v over the test's own sleeps (%v)", d, o, tol, late)
		}
		if e := median(r.vsSlept).Abs(); e > tol {
			t.Errorf("delay %v: the caller saw %v more or less than the server slept (median), more than %v", d, e, tol)
		}
	}
}

// BenchmarkInjectedVsMeasured reports, per fsync, the delay injected, the
// delay measured by the caller (fsync time minus the no-delay median), their
// ratio, and the median per-call error with the backing fsync time taken out.
// Run: go test -run '^$' -bench InjectedVsMeasured ./faults/fsyncfs/
func BenchmarkInjectedVsMeasured(b *testing.B) {
	for _, d := range []Delay{
		{Base: 2 * time.Millisecond},
		{Base: 10 * time.Millisecond, Jitter: 10 * time.Millisecond},
		{Base: 50 * time.Millisecond},
	} {
		b.Run(d.String(), func(b *testing.B) {
			m, _, mnt := mountT(b, 31)
			f, err := os.Create(filepath.Join(mnt, "f"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ResetTimer()
			r := measureInjection(b, m, f, d, b.N, false)
			b.StopTimer()
			n := float64(r.calls)
			b.ReportMetric(ms(r.injected)/n, "injected-ms/op")
			b.ReportMetric(ms(r.measured)/n, "measured-ms/op")
			b.ReportMetric(r.ratio(), "measured/injected")
			b.ReportMetric(math.Abs(ms(r.medianErr())), "median-abs-err-ms")
			b.ReportMetric(ms(r.baseline), "baseline-ms")
		})
	}
}

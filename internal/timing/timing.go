// Package timing measures how late this process's timers fire, for tests
// that compare an injected delay with a measured one on a shared machine:
// a busy machine fires every timer late, the fault's too, so the run's own
// lateness is the allowance, never a fixed number of milliseconds.
package timing

import (
	"slices"
	"time"
)

// Lateness fires timers of d back to back until stop is called and
// returns how late they fired: mean and median (zero when none fired).
func Lateness(d time.Duration) (stop func() (mean, median time.Duration)) {
	done := make(chan struct{})
	res := make(chan []time.Duration, 1)
	go func() {
		var late []time.Duration
		for {
			t0 := time.Now()
			tm := time.NewTimer(d)
			select {
			case <-done:
				tm.Stop()
				res <- late
				return
			case <-tm.C:
				late = append(late, time.Since(t0)-d)
			}
		}
	}()
	return func() (time.Duration, time.Duration) {
		close(done)
		l := <-res
		if len(l) == 0 {
			return 0, 0
		}
		var sum time.Duration
		for _, x := range l {
			sum += x
		}
		slices.Sort(l)
		return sum / time.Duration(len(l)), l[len(l)/2]
	}
}

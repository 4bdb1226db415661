package timing

import (
	"testing"
	"time"
)

// TestLatenessNeverNegative: a timer never fires early, and one that was
// given time to fire is counted.
func TestLatenessNeverNegative(t *testing.T) {
	stop := Lateness(2 * time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	mean, median := stop()
	if mean < 0 || median < 0 {
		t.Fatalf("lateness mean %v median %v: timers fired early", mean, median)
	}
	stop = Lateness(time.Hour)
	if mean, median := stop(); mean != 0 || median != 0 {
		t.Fatalf("no timer fired, got %v %v", mean, median)
	}
}

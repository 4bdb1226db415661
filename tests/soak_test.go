package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// soakRSS runs `driftlab run --backend virtual` of the baseline stretched
// to d of simulated time in a new process and returns its peak RSS and
// wall time.
func soakRSS(t *testing.T, d string) (int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--no-report", "--quiet", "--out", filepath.Join(t.TempDir(), "soak"), soakScenario(t, d))
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("%s soak: %v\n%s", d, err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no rusage on this system")
	}
	return ru.Maxrss << 10, took // Linux reports KiB
}

// TestVirtualSoakMemoryIsFlat (issue 17): a virtual run's memory does not
// grow with simulated time. A simulated day of the baseline (4.8 million
// events, 432,000 operations, a 580 MB history.jsonl) stays under 300 MB
// of RSS and within 100 MB of two simulated hours. Before the history
// was streamed to the file, 24 h took 3.4 GB; with the operations
// generated up front, 280 MB against 2 h's 95 MB (now about 125 and 80).
func TestVirtualSoakMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day takes about 10 s; skipped with -short")
	}
	short, _ := soakRSS(t, "2h")
	day, took := soakRSS(t, "24h")
	t.Logf("peak RSS: %d MB for 2 h, %d MB for 24 h (%v wall)", short>>20, day>>20, took.Round(time.Millisecond))
	if day > 300<<20 {
		t.Errorf("a simulated day took %d MB, more than 300 MB", day>>20)
	}
	if day > short+100<<20 {
		t.Errorf("memory grows with simulated time: %d MB for 2 h, %d MB for 24 h", short>>20, day>>20)
	}
}

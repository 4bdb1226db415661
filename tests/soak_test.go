package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// soakRSS runs `driftlab run --backend virtual` of the baseline stretched
// to d of simulated time in a new process and returns its peak RSS and
// wall time. The peak is the child's VmHWM, read from /proc while it runs:
// the rusage of a child forked from this test binary starts from the
// binary's own peak (Linux keeps the high-water mark across fork and
// exec), which after the suite's control planes was 1.4 GB.
func soakRSS(t *testing.T, d string) (int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--no-report", "--quiet", "--out", filepath.Join(t.TempDir(), "soak"), soakScenario(t, d))
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			took := time.Since(t0)
			if err != nil {
				t.Fatalf("%s soak: %v\n%s", d, err, out.Bytes())
			}
			if peak == 0 {
				t.Skip("no /proc/PID/status VmHWM on this system")
			}
			return peak, took
		case <-tick.C:
			if hwm := vmHWM(cmd.Process.Pid); hwm > peak {
				peak = hwm
			}
		}
	}
}

// vmHWM is a process's peak resident set size in bytes (0 when unknown).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
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

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
)

// soakScenario writes the baseline scenario stretched to d of simulated
// time, on the virtual backend, and returns its path.
func soakScenario(t *testing.T, d string) string {
	t.Helper()
	b, err := os.ReadFile("../scenarios/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(strings.Replace(string(b), "duration: 20s", "duration: "+d, 1), "backend: local", "backend: virtual", 1)
	p := filepath.Join(t.TempDir(), "soak.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startVirtualRun starts `driftlab run` of scenario into dir in a new
// process and waits until its history.jsonl holds more than 1 MB.
func startVirtualRun(t *testing.T, ctx context.Context, scenario, dir string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "run", "--no-report", "--out", dir, scenario)
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, bundle.HistoryFile)); err == nil && st.Size() > 1<<20 {
			return cmd, &out
		}
		if ctx.Err() != nil {
			t.Fatalf("the run wrote no history as it went:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKilledVirtualRunLeavesPartialHistory: a virtual run killed with
// SIGKILL halfway leaves the records it had made so far in history.jsonl
// (all but perhaps a torn last line), an incomplete bundle, and replaying
// that bundle exits 2 saying it is incomplete.
func TestKilledVirtualRunLeavesPartialHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "killed")
	cmd, out := startVirtualRun(t, ctx, soakScenario(t, "2h"), dir)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	f, err := os.Open(filepath.Join(dir, bundle.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, torn := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last history.Record
	for sc.Scan() {
		var r history.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			torn++
			continue
		}
		if r.T < last.T {
			t.Fatalf("record %d at %v after one at %v: the partial history is not in time order", n, r.T, last.T)
		}
		last = r
		n++
	}
	if n < 1000 || torn > 1 || last.Kind == history.KindRunEnd {
		t.Fatalf("partial history: %d records, %d torn lines, last %+v\n%s", n, torn, last, out.String())
	}
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Status != bundle.StatusIncomplete {
		t.Fatalf("manifest status %q, want %q", b.Manifest.Status, bundle.StatusIncomplete)
	}
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"replay", "--no-report", "--quiet", "--out", filepath.Join(t.TempDir(), "replay"), dir}, &stdout, &stderr)
	if code != cli.ExitUsage || !strings.Contains(stderr.String(), "is incomplete") {
		t.Fatalf("replay of the killed bundle: exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
}

// TestInterruptedVirtualRunStops (issue 17): SIGINT and SIGTERM stop a
// virtual run of a simulated day within a second: the bundle says
// interrupted and not passed, the output says where, and the exit code is
// 3. (Before, the run ignored both, ran to its end, printed PASS and exited
// 0 while the manifest said "interrupted", "passed": true.)
func TestInterruptedVirtualRunStops(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := filepath.Join(t.TempDir(), "interrupted")
			cmd, out := startVirtualRun(t, ctx, soakScenario(t, "24h"), dir)
			t0 := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			took := time.Since(t0)
			t.Logf("stopped %v after %v", took, sig)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitRunFailed {
				t.Fatalf("exit %v, want %d\n%s", err, cli.ExitRunFailed, out.String())
			}
			// The bound: a run that ignores the signal goes on for
			// many seconds (a simulated day), one that stops takes 0.2-0.5 s
			// under load, most of it finishing the bundle.
			if took > time.Second {
				t.Errorf("the run took %v to stop after %v, want at most 1s", took, sig)
			}
			b, berr := bundle.Open(dir)
			if berr != nil {
				t.Fatalf("%v\n%s", berr, out.String())
			}
			if b.Manifest.Status != bundle.StatusInterrupted || b.Manifest.Passed == nil || *b.Manifest.Passed {
				t.Fatalf("manifest status %q passed %v", b.Manifest.Status, b.Manifest.Passed)
			}
			if !strings.Contains(out.String(), "interrupted at") || strings.Contains(out.String(), "PASS") {
				t.Fatalf("the output does not say where the run was interrupted, or says PASS:\n%s", out.String())
			}
		})
	}
}

// peakRSS is a running process's peak resident set (VmHWM), 0 when
// /proc does not say.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestInterruptedSweepPrintsAndWritesWhatWasDone (issue 17): a sweep of
// two billion seeds starts at once without listing them (16 GB as a list)
// and, on SIGINT, stops within a second, prints the runs it finished and
// writes them to --json marked interrupted, and exits 3. (Before, it died
// on SIGINT with no partial result and no --json.)
func TestInterruptedSweepPrintsAndWritesWhatWasDone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := filepath.Join(t.TempDir(), "sweep.json")
	cmd := exec.CommandContext(ctx, os.Args[0], "sweep", "--backend", "virtual", "--seeds", "2000000000", "--workers", "2", "--json", js, "baseline")
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	rss := peakRSS(cmd.Process.Pid)
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	took := time.Since(t0)
	t.Logf("peak RSS %d MB before the signal; stopped %v after SIGINT", rss>>20, took)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitRunFailed {
		t.Fatalf("exit %v, want %d\nstdout %s\nstderr %s", err, cli.ExitRunFailed, stdout.String(), stderr.String())
	}
	if took > time.Second {
		t.Errorf("the sweep took %v to stop after SIGINT, want at most 1s", took)
	}
	if rss > 1<<30 {
		t.Errorf("peak RSS %d MB: the seeds are not streamed", rss>>20)
	}
	var r struct {
		Runs        int   `json:"runs"`
		Planned     int   `json:"planned"`
		Interrupted bool  `json:"interrupted"`
		Failures    []any `json:"failures"`
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatalf("no --json after SIGINT: %v\nstderr %s", err, stderr.String())
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || r.Planned != 2_000_000_000 || r.Runs < 1 || r.Failures == nil {
		t.Fatalf("--json %s", b)
	}
	if want := fmt.Sprintf("%d runs of baseline (shard 0/1, interrupted: %d of 2000000000 runs done)", r.Runs, r.Runs); !strings.Contains(stdout.String(), want) {
		t.Fatalf("stdout does not say %q:\n%s", want, stdout.String())
	}
	if !strings.Contains(stderr.String(), "interrupted after") {
		t.Fatalf("stderr %s", stderr.String())
	}
}

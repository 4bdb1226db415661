package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
)

func needControlPlane(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: starts a control plane; skipped with -short")
	}
	if _, err := local.FindKubeAPIServer(); err != nil {
		t.Fatal(err)
	}
}

// runDir keeps a run's artifacts under the test's temp dir, or under
// $DRIFTLAB_TEST_ARTIFACTS when set (so CI can keep them).
func runDir(t *testing.T, name string) string {
	if base := os.Getenv("DRIFTLAB_TEST_ARTIFACTS"); base != "" {
		d := filepath.Join(base, name)
		_ = os.RemoveAll(d)
		return d
	}
	return filepath.Join(t.TempDir(), name)
}

func invariantResult(t *testing.T, s *report.Summary, name string) invariant.Result {
	t.Helper()
	for _, r := range s.Invariants {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("summary has no invariant %q: %+v", name, s.Invariants)
	return invariant.Result{}
}

// TestBaselinePasses runs the built-in baseline scenario on the local
// backend: every invariant must pass with a p99 well under a second, the
// history must hold every kind of record the issue names, and kubectl must
// read the KVClusters through the run's kubeconfig while the run goes on.
func TestBaselinePasses(t *testing.T) {
	needControlPlane(t)
	s, err := scenarios.Builtin("baseline")
	if err != nil {
		t.Fatal(err)
	}
	dir := runDir(t, "baseline")

	// kubectl, while the run is going.
	ctx, cancel := context.WithCancel(context.Background())
	var kubectlOut []byte
	var wg sync.WaitGroup
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kubectlOut = pollKubectl(ctx, kubectl, filepath.Join(dir, "kubeconfig"))
		}()
	} else {
		t.Log("kubectl not installed: not checking it")
	}

	sum, err := local.Run(context.Background(), s, local.RunOptions{System: reference(t, s), Dir: dir, Progress: testWriter{t}})
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	var buf bytes.Buffer
	sum.Print(&buf)
	t.Log(buf.String())

	if !sum.Passed {
		t.Fatalf("baseline failed: %+v", sum.Invariants)
	}
	if sum.Latency.Count < 5 {
		t.Errorf("only %d latency samples", sum.Latency.Count)
	}
	if sum.Latency.P99 <= 0 || sum.Latency.P99 >= 1000 {
		t.Errorf("latency p99 %.1fms, want well under 1s", sum.Latency.P99)
	}
	if sum.Startup.EtcdMs <= 0 || sum.Startup.APIServerMs <= 0 {
		t.Errorf("start-up not measured: %+v", sum.Startup)
	}

	// The files a user reads.
	got, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil || !got.Passed || got.Scenario != "baseline" || got.Backend != "local" || got.Seed != s.Seed {
		t.Errorf("summary.json: %+v, %v", got, err)
	}
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := history.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, r := range recs {
		kinds[r.Source+"/"+r.Kind]++
	}
	for _, k := range []string{"harness/subject", "workload/op", "truth/pod-ready", "truth/truth", "truth/reported", "operator/event",
		"operator/reconcile-start", "operator/reconcile-end", "operator/status-write", "kubelet/kubelet-ready"} {
		if kinds[k] == 0 {
			t.Errorf("history.jsonl has no %s records (have %v)", k, kinds)
		}
	}
	// Re-checking the recorded history offline gives the same verdict.
	if again := invariant.Check(recs, s.Invariants); again.Passed() != sum.Passed || again.Latency.Count != sum.Latency.Count {
		t.Errorf("offline check of history.jsonl disagrees: %+v vs %+v", again.Results, sum.Invariants)
	}
	if hs, err := report.ReadHlog(filepath.Join(dir, "latency.hlog")); err != nil || len(hs) != 1 || hs[0].TotalCount() != sum.Latency.Count {
		t.Errorf("latency.hlog: %d histograms, err %v", len(hs), err)
	}

	if kubectlOut != nil && !strings.Contains(string(kubectlOut), "kv-0") {
		t.Errorf("kubectl get kvclusters -A during the run did not list kv-0:\n%s", kubectlOut)
	}
}

// pollKubectl runs `kubectl get kvclusters -A` until it lists a cluster or
// ctx ends, and returns its last output.
func pollKubectl(ctx context.Context, kubectl, kubeconfig string) []byte {
	var last []byte
	for ctx.Err() == nil {
		if _, err := os.Stat(kubeconfig); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			out, err := exec.CommandContext(cctx, kubectl, "--kubeconfig", kubeconfig, "get", "kvclusters", "-A").CombinedOutput()
			cancel()
			if err == nil {
				last = out
				if strings.Contains(string(out), "kv-0") {
					return out
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return last
}

// TestBrokenOperatorFailsDrift is the negative control: with the
// freeze-status bug the operator stops writing status after its first write,
// and the drift invariant must catch it. It goes through the CLI, so it also
// checks that a failed invariant gives exit code 1.
func TestBrokenOperatorFailsDrift(t *testing.T) {
	needControlPlane(t)
	src := `name: negative-freeze-status
description: Negative control; the operator freezes status after its first write.
seed: 3
operator:
  bugs: [` + bugs.FreezeStatus + `]
kubelet:
  readyDelay: {min: 100ms, max: 300ms}
workload:
  duration: 8s
  objects: 2
  initialReplicas: {min: 2, max: 3}
  scale: {every: 2s, replicas: {min: 1, max: 4}}
  annotate: {rate: 5}
invariants:
  drift: {convergeWithin: 5s, staleness: 5s}
  latency: {p99: 1s}
`
	file := filepath.Join(t.TempDir(), "negative.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := runDir(t, "negative-freeze-status")
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"run", "--quiet", "--out", dir, file}, &stdout, &stderr)
	t.Log(stdout.String())
	if code != cli.ExitFailed {
		t.Fatalf("exit code %d, want %d (invariant failed); stderr:\n%s", code, cli.ExitFailed, stderr.String())
	}
	sum, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Passed {
		t.Fatal("summary says passed for a broken operator")
	}
	if sum.Error != "" {
		t.Fatalf("the run itself failed, so the control proves nothing: %s", sum.Error)
	}
	conv := invariantResult(t, sum, invariant.DriftConvergence)
	if conv.Passed || !strings.Contains(conv.Detail, "never converged") {
		t.Fatalf("drift-convergence should fail naming the frozen status: %+v", conv)
	}
	if !strings.Contains(stdout.String(), "FAIL") {
		t.Errorf("printed summary does not say FAIL:\n%s", stdout.String())
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestInterruptedRunKeepsArtifacts cancels a run in the middle of its
// workload (as Ctrl-C does): the run must stop cleanly, report the
// interruption, and leave summary.json and a readable history behind.
func TestInterruptedRunKeepsArtifacts(t *testing.T) {
	needControlPlane(t)
	s, err := scenarios.Builtin("baseline")
	if err != nil {
		t.Fatal(err)
	}
	dir := runDir(t, "interrupted")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := &onLine{match: "] workload", fn: func() { time.AfterFunc(2*time.Second, cancel) }}
	sum, err := local.Run(ctx, s, local.RunOptions{System: reference(t, s), Dir: dir, Progress: trigger})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("want an 'interrupted' error, got %v", err)
	}
	got, rerr := report.ReadSummary(filepath.Join(dir, "summary.json"))
	if rerr != nil {
		t.Fatalf("no summary.json after interruption: %v", rerr)
	}
	if got.Passed || !strings.Contains(got.Error, "interrupted") || sum.Passed {
		t.Fatalf("summary of an interrupted run: passed=%v error=%q", got.Passed, got.Error)
	}
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := history.Read(f)
	if err != nil || len(recs) == 0 {
		t.Fatalf("history after interruption: %d records, %v", len(recs), err)
	}
	if last := recs[len(recs)-1]; last.Kind != history.KindRunEnd {
		t.Errorf("history does not end with run-end: %+v", last)
	}
}

// onLine calls fn once, the first time a written line contains match.
type onLine struct {
	match string
	fn    func()
	once  sync.Once
}

func (w *onLine) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.match) {
		w.once.Do(w.fn)
	}
	return len(p), nil
}

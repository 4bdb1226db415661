package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/operator/virtual/bundletest"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
)

// incidentFrozenStatus is a bundle recorded on the virtual backend: the
// operator wrote each cluster's status once and never again.
const incidentFrozenStatus = "testdata/bundles/incident-frozen-status"

// TestIncidentFrozenStatusStillReproduces is the regression test of a
// recorded incident: replaying its bundle must still fail drift-convergence
// and latency, as recorded.
func TestIncidentFrozenStatusStillReproduces(t *testing.T) {
	res, _ := bundletest.Replay(t, incidentFrozenStatus, bundletest.Options{})
	if res.Summary.Passed {
		t.Fatal("the incident's replay passed")
	}
}

// TestIncidentFrozenStatusFixed: with the bug switched off (standing in for
// the fix), the same scenario and seed pass: the "no longer fails" mode.
func TestIncidentFrozenStatusFixed(t *testing.T) {
	bundletest.Replay(t, incidentFrozenStatus, bundletest.Options{Expect: bundletest.Fixed,
		Modify: func(s *scenarios.Scenario) { s.Operator.Bugs = nil }})
}

// TestBundletestCatchesAChangedOutcome: the helper must fail when the
// replay's outcome differs from the recording (here the bug is switched
// off but the recording is expected to reproduce).
func TestBundletestCatchesAChangedOutcome(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		bundletest.Replay(ft, incidentFrozenStatus, bundletest.Options{Modify: func(s *scenarios.Scenario) { s.Operator.Bugs = nil }})
	}()
	if !ft.failed || !strings.Contains(ft.msg, "no longer reproduces") {
		t.Fatalf("bundletest did not fail on a changed outcome: %q", ft.msg)
	}
}

// fakeT records a Fatalf instead of failing the real test.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic("fatal")
}
func (f *fakeT) Logf(format string, args ...any) {}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// TestReplayVirtualBundle records a run on the virtual backend through the
// CLI, replays it (identical trace hash, exit 0), then corrupts one byte and
// sees the replay refused with the file named (exit 2).
func TestReplayVirtualBundle(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"run", "-q", "--backend", "virtual", "--out", rec, "baseline"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr.String())
	}
	for _, f := range []string{bundle.ManifestFile, bundle.ScenarioFile, bundle.FaultsFile, bundle.MetricsFile, bundle.ReportFile} {
		if _, err := os.Stat(filepath.Join(rec, f)); err != nil {
			t.Errorf("run left no %s: %v", f, err)
		}
	}
	stdout.Reset()
	stderr.Reset()
	code := cli.Main([]string{"replay", "-q", "--no-report", "--out", filepath.Join(dir, "replay"), rec}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "trace hash matches") {
		t.Fatalf("replay: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}

	bad := filepath.Join(dir, "bad")
	copyDir(t, rec, bad)
	h := filepath.Join(bad, bundle.HistoryFile)
	data, err := os.ReadFile(h)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"pod-ready"`))
	data[i+2] = 'x' // one byte
	if err := os.WriteFile(h, data, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	code = cli.Main([]string{"replay", "-q", "--out", filepath.Join(dir, "replay2"), bad}, &stdout, &stderr)
	if code != cli.ExitUsage || !strings.Contains(stderr.String(), "history.jsonl: modified") {
		t.Fatalf("a corrupted bundle: exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "replay2")); err == nil {
		t.Fatal("a refused replay must not start a run")
	}
}

// opRecords lists a history's workload operations without their times.
func opRecords(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := history.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Kind == history.KindOp {
			out = append(out, r.Op+" "+r.Object+" "+r.Detail)
		}
	}
	return out
}

const shortLocal = `name: short-local
description: A short healthy run for replay and audit import.
seed: 5
workload:
  duration: 8s
  objects: 2
  initialReplicas: {min: 1, max: 3}
  scale: {every: 2s, replicas: {min: 1, max: 4}}
  annotate: {rate: 2}
  deleteObjects: 1
`

// TestLocalRunBundleReplayAndAuditImport records a local run with an audit
// log, replays its bundle on the local backend (the same operations, the
// same verdicts, latency differences printed), imports the audit log as a
// scenario and replays that on the virtual backend: it must apply the same
// operations as the recorded run.
func TestLocalRunBundleReplayAndAuditImport(t *testing.T) {
	needControlPlane(t)
	file := filepath.Join(t.TempDir(), "short-local.yaml")
	if err := os.WriteFile(file, []byte(shortLocal), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := runDir(t, "bundle-local")
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"run", "-q", "--out", rec, "--audit-log", "audit.log", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	b, err := bundle.Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Manifest
	if m.Status != bundle.StatusComplete || !strings.HasPrefix(m.Versions.KubeAPIServer, "Kubernetes v") || m.Versions.Etcd == "" {
		t.Fatalf("manifest: %+v", m)
	}
	for _, f := range []string{"audit.log", "kube-apiserver.log", "operator.log", "latency.hlog", bundle.OpsFile, bundle.MetricsFile} {
		if !b.Has(f) {
			t.Errorf("the bundle does not list %s", f)
		}
	}
	if ms, _ := os.ReadFile(filepath.Join(rec, bundle.MetricsFile)); !bytes.Contains(ms, []byte("etcd-metrics")) {
		t.Errorf("metrics.jsonl holds no etcd scrape:\n%s", ms)
	}

	// Replay on the local backend.
	stdout.Reset()
	stderr.Reset()
	replay := runDir(t, "bundle-local-replay")
	code := cli.Main([]string{"replay", "-q", "--no-report", "--out", replay, rec}, &stdout, &stderr)
	t.Log(stdout.String())
	if code != 0 {
		t.Fatalf("local replay: exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{"workload: the same", "operations as the recorded run", "drift-convergence", "p99", "delta", "reproduced"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("replay output lacks %q", want)
		}
	}

	// Import the audit log and replay it on the virtual backend.
	imported := filepath.Join(t.TempDir(), "imported.yaml")
	stdout.Reset()
	stderr.Reset()
	if code := cli.Main([]string{"import", "audit", "--name", "incident-short", "--out", imported, filepath.Join(rec, "audit.log")}, &stdout, &stderr); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr.String())
	}
	s, err := scenarios.Load(imported)
	if err != nil {
		t.Fatal(err)
	}
	vdir := t.TempDir()
	if _, err := virtual.Run(s, virtual.Options{Dir: vdir}); err != nil {
		t.Fatal(err)
	}
	want := opRecords(t, filepath.Join(rec, bundle.HistoryFile))
	got := opRecords(t, filepath.Join(vdir, bundle.HistoryFile))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the imported scenario applies other operations (%d) than the recorded run (%d):\n got %q\nwant %q", len(got), len(want), got, want)
	}
	if len(want) < 10 {
		t.Fatalf("only %d operations recorded", len(want))
	}
}

// TestInterruptedRunLeavesAnInterruptedBundle sends SIGINT (Ctrl-C) to a
// `driftlab run` process during its workload: the bundle must say
// "interrupted", verify, and have its report.
func TestInterruptedRunLeavesAnInterruptedBundle(t *testing.T) {
	needControlPlane(t)
	dir := runDir(t, "bundle-interrupted")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "run", "--out", dir, "baseline")
	cmd.Env = append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	sent := false
	var tail []string
	for sc.Scan() {
		line := sc.Text()
		tail = append(tail, line)
		if !sent && strings.Contains(line, "] workload: ops") {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !sent || !errors.As(err, &ee) || ee.ExitCode() != cli.ExitRunFailed {
		t.Fatalf("sent=%v, exit %v; want exit %d\n%s", sent, err, cli.ExitRunFailed, strings.Join(tail, "\n"))
	}
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Status != bundle.StatusInterrupted || !strings.Contains(b.Manifest.Error, "interrupted") {
		t.Fatalf("manifest status %q error %q", b.Manifest.Status, b.Manifest.Error)
	}
	if !b.Has(bundle.HistoryFile) || !b.Has(bundle.SummaryFile) {
		t.Fatalf("the interrupted bundle lacks its history or summary: %+v", b.Manifest.Files)
	}
	if _, err := os.Stat(filepath.Join(dir, bundle.ReportFile)); err != nil {
		t.Fatalf("no report for the interrupted run: %v", err)
	}
}

// TestReplayIncompleteBundle: a bundle whose process died (Begin, never
// Finish) still replays from its scenario.yaml, but says the recording is
// incomplete and exits 2: there is nothing to compare with, so the replay
// proves nothing.
func TestReplayIncompleteBundle(t *testing.T) {
	s, err := scenarios.Builtin("baseline")
	if err != nil {
		t.Fatal(err)
	}
	s.Seed = 11
	dir := t.TempDir()
	rec := filepath.Join(dir, "killed")
	if _, err := bundle.Begin(rec, s, "virtual", bundle.CurrentVersions(""), nil); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"replay", "--no-report", "--out", filepath.Join(dir, "replay"), rec}, &stdout, &stderr)
	if code != cli.ExitUsage || !strings.Contains(stderr.String(), "the recorded run is incomplete") || !strings.Contains(stderr.String(), "is incomplete: its run never finished") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "seed 11") {
		t.Fatalf("the replay did not use the bundle's resolved seed:\n%s", stdout.String())
	}
}

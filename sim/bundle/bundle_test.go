package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/report"
)

func scenario(t *testing.T, name string) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeHistory writes a small history with one fault window and metric scrapes.
func writeHistory(t *testing.T, dir string) {
	t.Helper()
	rec, err := history.NewRecorder(filepath.Join(dir, HistoryFile), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []history.Record{
		{T: 1 * time.Second, Source: history.SourceHarness, Kind: history.KindWorkloadStart},
		{T: 1 * time.Second, Source: history.SourceHarness, Kind: history.KindEtcdMetrics, Detail: "workload-start", Metrics: map[string]float64{"etcd_puts": 10}},
		{T: 2 * time.Second, Source: history.SourceHarness, Kind: history.KindFaultStart, Op: "wal-fsync-delay", Detail: "0"},
		{T: 12 * time.Second, Source: history.SourceHarness, Kind: history.KindFaultStop, Op: "wal-fsync-delay", Detail: "0", Metrics: map[string]float64{"fsyncs_delayed": 42}},
		{T: 12 * time.Second, Source: history.SourceHarness, Kind: history.KindRuntime, Detail: "stop:0", Metrics: map[string]float64{"gc_cycles": 3}},
		{T: 20 * time.Second, Source: history.SourceHarness, Kind: history.KindWorkloadEnd},
	} {
		rec.Add(r)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}

func finished(t *testing.T) (string, *scenarios.Scenario) {
	t.Helper()
	dir := t.TempDir()
	s := scenario(t, "wal-fsync-delay")
	w, err := Begin(dir, s, "local", CurrentVersions(""), []string{"driftlab", "run", "wal-fsync-delay"})
	if err != nil {
		t.Fatal(err)
	}
	writeHistory(t, dir)
	sum := &report.Summary{Scenario: s.Name, Backend: "local", Seed: s.Seed, Passed: true,
		Invariants: []invariant.Result{{Name: "latency", Passed: true}}}
	if err := sum.WriteJSON(filepath.Join(dir, SummaryFile)); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(sum, nil, false); err != nil {
		t.Fatal(err)
	}
	return dir, s
}

func TestFinishedBundleVerifiesAndReadsBack(t *testing.T) {
	dir, s := finished(t)
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Manifest
	if m.Status != StatusComplete || m.Passed == nil || !*m.Passed || m.Seed != s.Seed || m.Backend != "local" {
		t.Fatalf("manifest %+v", m)
	}
	if m.Versions.Go == "" || m.Versions.Etcd == "" || m.Versions.Driftlab == "" {
		t.Fatalf("versions missing: %+v", m.Versions)
	}
	for _, want := range []string{ScenarioFile, HistoryFile, SummaryFile, FaultsFile, MetricsFile} {
		if !b.Has(want) {
			t.Errorf("manifest does not list %s: %+v", want, m.Files)
		}
	}
	got, err := b.Scenario()
	if err != nil {
		t.Fatal(err)
	}
	got.File, s.File = "", ""
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("scenario.yaml does not read back as the resolved scenario:\n got %+v\nwant %+v", got, s)
	}
	fs, err := b.Faults()
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Type != "wal-fsync-delay" || fs[0].StartMs != 2000 || fs[0].StopMs == nil || *fs[0].StopMs != 12000 || fs[0].Effect["fsyncs_delayed"] != 42 {
		t.Fatalf("executed faults %+v", fs)
	}
	data, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Fatalf("metrics.jsonl has %d lines, want 2 (one etcd, one runtime scrape):\n%s", n, data)
	}
}

func TestTamperedBundleIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
		damage           func(path string) error
	}{
		{"flipped byte", HistoryFile, "modified: SHA-256", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x20
			return os.WriteFile(p, b, 0o644)
		}},
		{"truncated", HistoryFile, "truncated", func(p string) error { return os.Truncate(p, 10) }},
		{"appended", SummaryFile, "modified", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString("x")
			return errors.Join(err, f.Close())
		}},
		{"removed", FaultsFile, "missing", os.Remove},
		{"scenario edited", ScenarioFile, "modified", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, []byte(strings.Replace(string(b), "seed: 1", "seed: 2", 1)), 0o644)
		}},
		{"manifest damaged", ManifestFile, "not valid JSON", func(p string) error { return os.Truncate(p, 30) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := finished(t)
			if _, err := Open(dir); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(filepath.Join(dir, tc.file)); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("want a VerifyError, got %v", err)
			}
			if ve.File != tc.file || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
				t.Fatalf("error %q: want it to name %s and say %q", err, tc.file, tc.want)
			}
		})
	}
}

func TestRegeneratedReportKeepsBundleValid(t *testing.T) {
	dir, _ := finished(t)
	for _, f := range []string{ReportFile, ScreenshotFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("regenerated"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir); err != nil {
		t.Fatalf("a regenerated report must not invalidate the bundle: %v", err)
	}
}

// A process killed mid-run never calls Finish: the bundle stays readable and
// says it is incomplete.
func TestUnfinishedBundleIsReadableAndMarkedIncomplete(t *testing.T) {
	dir := t.TempDir()
	s := scenario(t, "baseline")
	if _, err := Begin(dir, s, "virtual", CurrentVersions(""), nil); err != nil {
		t.Fatal(err)
	}
	writeHistory(t, dir)
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Status != StatusIncomplete || b.Manifest.Passed != nil {
		t.Fatalf("manifest %+v", b.Manifest)
	}
	if _, err := b.Scenario(); err != nil {
		t.Fatal(err)
	}
	if recs, err := b.History(); err != nil || len(recs) != 6 {
		t.Fatalf("history of an unfinished bundle: %d records, %v", len(recs), err)
	}
	if _, err := b.Summary(); err == nil {
		t.Fatal("an unfinished bundle has no summary to compare with")
	}
}

func TestFinishRecordsHowTheRunEnded(t *testing.T) {
	for _, tc := range []struct {
		err         error
		interrupted bool
		want        string
	}{
		{nil, false, StatusComplete},
		{errors.New("kube-apiserver did not start"), false, StatusFailed},
		{context.Canceled, true, StatusInterrupted},
	} {
		dir := t.TempDir()
		w, err := Begin(dir, scenario(t, "baseline"), "local", Versions{Go: "go", Etcd: "e", Driftlab: "d"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(nil, tc.err, tc.interrupted); err != nil {
			t.Fatal(err)
		}
		b, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if b.Manifest.Status != tc.want || (tc.err != nil && b.Manifest.Error != tc.err.Error()) {
			t.Fatalf("err %v: manifest status %q error %q, want %q", tc.err, b.Manifest.Status, b.Manifest.Error, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	res := func(pass bool) []invariant.Result {
		return []invariant.Result{{Name: "drift-convergence", Passed: true}, {Name: "latency", Passed: pass}}
	}
	rec := &report.Summary{Backend: "virtual", TraceHash: "aa", Invariants: res(false), Latency: invariant.LatencyStats{Count: 10, P99: 100}}
	same := &report.Summary{Backend: "virtual", TraceHash: "aa", Invariants: res(false), Latency: invariant.LatencyStats{Count: 10, P99: 100}}
	if c := Compare(rec, same); !c.Reproduced() || !c.TraceHashMatches {
		t.Fatalf("identical runs: %+v", c)
	}
	other := &report.Summary{Backend: "virtual", TraceHash: "bb", Invariants: res(false)}
	if c := Compare(rec, other); c.Reproduced() {
		t.Fatal("a different trace hash must not count as reproduced")
	}
	fixed := &report.Summary{Backend: "local", Passed: true, Invariants: res(true), Latency: invariant.LatencyStats{Count: 12, P99: 50}}
	c := Compare(&report.Summary{Backend: "local", Invariants: res(false), Latency: invariant.LatencyStats{Count: 10, P99: 100}}, fixed)
	if c.Reproduced() || c.SameVerdict() {
		t.Fatal("a changed invariant outcome must not count as reproduced")
	}
	var b strings.Builder
	c.Print(&b)
	for _, want := range []string{"latency", "FAIL", "pass", "changed", "p99", "-50%"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, b.String())
		}
	}
}

func TestManifestIsJSON(t *testing.T) {
	dir, _ := finished(t)
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format", "status", "versions", "files", "started", "finished"} {
		if _, ok := m[k]; !ok {
			t.Errorf("manifest.json lacks %q", k)
		}
	}
}

func TestCompareShowsFaultWindows(t *testing.T) {
	stop := 12000.0
	c := Compare(&report.Summary{}, &report.Summary{})
	c.RecordedFaults = []ExecutedFault{{Index: 0, Type: "wal-fsync-delay", StartMs: 2000, StopMs: &stop}, {Index: 1, Type: "gc-assist-pressure", Skipped: "no"}}
	c.NewFaults = []ExecutedFault{{Index: 0, Type: "wal-fsync-delay", StartMs: 2100}}
	var b strings.Builder
	c.Print(&b)
	for _, want := range []string{"0 wal-fsync-delay", "2.0s–12.0s", "2.1s–end", "1 gc-assist-pressure", "skipped"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, b.String())
		}
	}
}

// A new bundle in the directory of an old one (make demo reuses runs/demo)
// does not inherit the old run's files.
func TestBeginClearsAnOldBundle(t *testing.T) {
	dir, _ := finished(t)
	if err := os.WriteFile(filepath.Join(dir, ReportFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Begin(dir, scenario(t, "baseline"), "virtual", Versions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{HistoryFile, SummaryFile, FaultsFile, ReportFile} {
		if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s of the old run is still there", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("a file the old manifest did not list was removed: %v", err)
	}
	if err := w.Finish(nil, errors.New("no backend"), false); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Has(HistoryFile) || b.Manifest.Scenario != "baseline" {
		t.Fatalf("manifest %+v", b.Manifest)
	}
}

// TestFinishUsesWhatTheBackendKnowsOfTheHistory: with UseHistory, Finish
// takes the history's checksum and its fault and metrics records from the
// backend instead of reading the file again (a long soak's history is
// gigabytes, read after Ctrl-C); once the file no longer has that size,
// it reads it as before.
func TestFinishUsesWhatTheBackendKnowsOfTheHistory(t *testing.T) {
	for _, sameSize := range []bool{true, false} {
		dir := t.TempDir()
		s := scenario(t, "wal-fsync-delay")
		w, err := Begin(dir, s, "virtual", CurrentVersions(""), nil)
		if err != nil {
			t.Fatal(err)
		}
		writeHistory(t, dir)
		st, err := os.Stat(filepath.Join(dir, HistoryFile))
		if err != nil {
			t.Fatal(err)
		}
		size := st.Size()
		if !sameSize {
			size++
		}
		fake := strings.Repeat("ab", 32)
		known := []history.Record{{T: 3 * time.Second, Source: history.SourceHarness, Kind: history.KindFaultStart, Op: "gc-assist-pressure", Detail: "0"}}
		w.UseHistory(&KnownHistory{Size: size, SHA256: fake, FaultsAndMetrics: known})
		if err := w.Finish(nil, nil, true); err != nil {
			t.Fatal(err)
		}
		m, err := os.ReadFile(filepath.Join(dir, ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		faults, err := os.ReadFile(filepath.Join(dir, FaultsFile))
		if err != nil {
			t.Fatal(err)
		}
		usedKnown := strings.Contains(string(m), fake) && strings.Contains(string(faults), "gc-assist-pressure")
		readFile := !strings.Contains(string(m), fake) && strings.Contains(string(faults), "wal-fsync-delay")
		if sameSize && !usedKnown || !sameSize && !readFile {
			t.Fatalf("same size %v: manifest\n%s\nfaults.json\n%s", sameSize, m, faults)
		}
	}
}

package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/subject"
	"github.com/driftlab/driftlab/sim/workload"
)

// stubBackend starts nothing and counts Stop calls.
type stubBackend struct {
	stops   int
	startFn func(env *Env) error
}

func (b *stubBackend) Name() string { return "stub" }

func (b *stubBackend) Start(ctx context.Context, env *Env) (*Plane, error) {
	if b.startFn != nil {
		if err := b.startFn(env); err != nil {
			return nil, err
		}
	}
	return &Plane{Stop: func() error { b.stops++; return nil }}, nil
}

func testSystem() *System {
	return &System{Name: "stub", Subject: subject.Spec{APIVersion: "example.com/v1", Kind: "Thing",
		Properties: []subject.Property{{Name: "gen", Reported: "status.gen", Truth: subject.Truth{Field: "metadata.generation"}}}}}
}

// TestPlaneStoppedWhenTheHistoryCannotBeWritten: a run whose history file
// cannot be created still stops what its backend started (the local
// backend's etcd, and its FUSE mount, proxies and temporary directory,
// which an earlier version leaked).
func TestPlaneStoppedWhenTheHistoryCannotBeWritten(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "history.jsonl"), 0o755); err != nil { // a directory: not creatable as a file
		t.Fatal(err)
	}
	s, err := scenarios.Parse("t.yaml", []byte("name: t\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := &stubBackend{}
	sum, err := Run(context.Background(), s, testSystem(), b, Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "history") {
		t.Fatalf("want a history error, got %v", err)
	}
	if b.stops != 1 {
		t.Fatalf("the plane was stopped %d times, want once", b.stops)
	}
	if sum == nil || sum.Passed || sum.Error == "" || sum.Operator != "stub" || sum.Subject != "example.com/v1, Kind=Thing" {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); err != nil {
		t.Fatalf("no summary.json: %v", err)
	}
}

// TestStartErrorKeepsTheSummary: a backend that fails to start gets no
// Stop (it released what it took), and the run's summary says why.
func TestStartErrorKeepsTheSummary(t *testing.T) {
	dir := t.TempDir()
	s, _ := scenarios.Parse("t.yaml", []byte("name: t\n"))
	b := &stubBackend{startFn: func(*Env) error { return os.ErrPermission }}
	sum, err := Run(context.Background(), s, testSystem(), b, Options{Dir: dir})
	if err == nil || b.stops != 0 || sum == nil || sum.Passed || !strings.Contains(sum.Error, "permission") {
		t.Fatalf("err %v, stops %d, summary %+v", err, b.stops, sum)
	}
}

// TestCreatesAllFailedIsARunError: a workload none of whose creates
// succeeded measured nothing, and says why; one success, or creates of
// other kinds only, is not an error.
func TestCreatesAllFailedIsARunError(t *testing.T) {
	op := func(name, err string) history.Record {
		return history.Record{Kind: history.KindOp, Op: workload.OpCreate, Object: "ns/" + name, Err: err}
	}
	err := creates([]history.Record{op("kv-0", `namespaces "ns" not found`), op("kv-1", `namespaces "ns" not found`)})
	if err == nil || !strings.Contains(err.Error(), "none of the workload's 2 creates succeeded") || !strings.Contains(err.Error(), `ns/kv-0: namespaces "ns" not found`) {
		t.Fatalf("all creates failed: got %v", err)
	}
	if err := creates([]history.Record{op("kv-0", "conflict"), op("kv-1", "")}); err != nil {
		t.Fatalf("one create succeeded: got %v", err)
	}
	other := op("cm", "forbidden")
	other.Resource = "v1/ConfigMap"
	if err := creates([]history.Record{other}); err != nil {
		t.Fatalf("creates of another kind only: got %v", err)
	}
	if err := creates(nil); err != nil {
		t.Fatalf("no creates: got %v", err)
	}
}

package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftlab/driftlab/scenarios"
)

func baselineWorkload(t *testing.T) scenarios.Workload {
	t.Helper()
	s, err := scenarios.Builtin("baseline")
	if err != nil {
		t.Fatal(err)
	}
	return s.Workload
}

func TestGenerateIsDeterministicPerSeed(t *testing.T) {
	w := baselineWorkload(t)
	a, b := Generate(w, 7, "kv-"), Generate(w, 7, "kv-")
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different operations")
	}
	if reflect.DeepEqual(a, Generate(w, 8, "kv-")) {
		t.Fatal("different seeds gave identical operations")
	}
}

func TestGenerateFollowsTheWorkload(t *testing.T) {
	w := baselineWorkload(t)
	ops := Generate(w, 1, "kv-")
	counts := map[string]int{}
	for i, op := range ops {
		counts[op.Kind]++
		if i > 0 && op.At < ops[i-1].At {
			t.Fatalf("operations out of order at %d", i)
		}
		if op.At > w.Duration.Duration {
			t.Fatalf("operation %v after the workload's end", op)
		}
	}
	wantAnnotate := int(w.Annotate.Rate*w.Duration.Seconds()) - 1 // none at t=0 or at the end
	if counts[OpCreate] != w.Objects || counts[OpDelete] != w.DeleteObjects || counts[OpAnnotate] != wantAnnotate {
		t.Fatalf("counts %v: want %d creates, %d deletes, %d annotates", counts, w.Objects, w.DeleteObjects, wantAnnotate)
	}
	if want := int((w.Duration.Duration - 1) / w.Scale.Every.Duration); counts[OpScale] != want {
		t.Fatalf("%d scale ops, want %d", counts[OpScale], want)
	}
}

func TestExplicitOperationsReplaceTheGeneratedOnes(t *testing.T) {
	y := `name: imported
workload:
  duration: 5s
  objects: 3
  annotate: {rate: 5}
  operations:
    - {at: 0s, op: create, name: shop-db, replicas: 2}
    - {at: 1500ms, op: scale, name: shop-db, replicas: 4}
    - {at: 2s, op: annotate, name: shop-db, key: example.com/owner, value: team-b}
    - {at: 2s, op: annotate, name: shop-db, value: "7"}
    - {at: 4s, op: delete, name: shop-db}
`
	s, err := scenarios.Parse("imported.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{At: 0, Kind: OpCreate, Name: "shop-db", Replicas: 2},
		{At: 1500 * time.Millisecond, Kind: OpScale, Name: "shop-db", Replicas: 4},
		{At: 2 * time.Second, Kind: OpAnnotate, Name: "shop-db", Key: "example.com/owner", Value: "team-b"},
		{At: 2 * time.Second, Kind: OpAnnotate, Name: "shop-db", Value: "7"},
		{At: 4 * time.Second, Kind: OpDelete, Name: "shop-db"},
	}
	for _, seed := range []uint64{1, 2} {
		if got := Generate(s.Workload, seed, "kv-"); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: got %+v\nwant %+v", seed, got, want)
		}
	}
	if got := want[2].String(); got != "annotate shop-db example.com/owner=team-b" {
		t.Fatalf("String() = %q", got)
	}
	if got := want[3].String(); got != "annotate shop-db driftlab.io/tick=7" {
		t.Fatalf("String() = %q", got)
	}
}

// TestOpStringFormat pins the one-line form of each operation: the
// virtual backend hashes it into every trace.
func TestOpStringFormat(t *testing.T) {
	for _, c := range []struct {
		op   Op
		want string
	}{
		{Op{Kind: OpCreate, Name: "kv-0", Replicas: 3}, "create kv-0 replicas=3"},
		{Op{Kind: OpScale, Name: "kv-1", Replicas: 0}, "scale kv-1 replicas=0"},
		{Op{Kind: OpAnnotate, Name: "kv-2", Value: "17"}, "annotate kv-2 " + AnnotationKey + "=17"},
		{Op{Kind: OpAnnotate, Name: "kv-2", Key: "a/b", Value: `x"y`}, `annotate kv-2 a/b=x"y`},
		{Op{Kind: OpDelete, Name: "kv-3"}, "delete kv-3"},
	} {
		if got := c.op.String(); got != c.want {
			t.Errorf("%+v: String() = %q, want %q", c.op, got, c.want)
		}
	}
}

// TestGenerateSizesItsSlice checks CountOps against what Generate draws,
// for the built-in workloads and edge cases (durations on and off the
// step).
func TestGenerateSizesItsSlice(t *testing.T) {
	w := baselineWorkload(t)
	for _, d := range []time.Duration{0, 999 * time.Millisecond, time.Second, 1001 * time.Millisecond, 20 * time.Second, 60 * time.Second} {
		w.Duration.Duration = d
		ops := Generate(w, 3, "kv-")
		if n := CountOps(w); n != len(ops) || cap(ops) != n {
			t.Errorf("duration %v: countOps %d, Generate made %d (cap %d)", d, n, len(ops), cap(ops))
		}
	}
}

// recordingClient captures the patches Apply sends.
type recordingClient struct {
	client.Client
	patches []string
}

func (c *recordingClient) Patch(_ context.Context, _ client.Object, p client.Patch, _ ...client.PatchOption) error {
	data, err := p.Data(nil)
	if err != nil {
		return err
	}
	c.patches = append(c.patches, string(data))
	return nil
}

// TestApplyPatches checks the merge patches of scale and annotate: valid
// JSON, with the key and value quoted as before (%q).
func TestApplyPatches(t *testing.T) {
	c := &recordingClient{}
	ops := []Op{
		{Kind: OpScale, Name: "kv-0", Replicas: 4},
		{Kind: OpAnnotate, Name: "kv-0", Value: "12"},
		{Kind: OpAnnotate, Name: "kv-0", Key: "x/y", Value: "a \"b\" \\ c"},
	}
	target := &Target{GVK: schema.GroupVersionKind{Group: "kv.driftlab.io", Version: "v1alpha1", Kind: "KVCluster"}, Replicas: []string{"spec", "replicas"}}
	for _, op := range ops {
		if err := Apply(context.Background(), c, target, "ns", op); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`{"spec":{"replicas":4}}`,
		fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationKey, "12"),
		fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, "x/y", "a \"b\" \\ c"),
	}
	if !reflect.DeepEqual(c.patches, want) {
		t.Fatalf("patches = %q, want %q", c.patches, want)
	}
	for _, p := range c.patches {
		if !json.Valid([]byte(p)) {
			t.Errorf("patch %s is not JSON", p)
		}
	}
}

// TestRunLastsTheWorkloadsDuration (issue 17): on the local and cluster
// backends the workload also ends at its duration, not at its last
// operation (the harness starts the faults and the settle period from
// there). A lower bound only: a sleep is never early.
func TestRunLastsTheWorkloadsDuration(t *testing.T) {
	c := &recordingClient{}
	target := &Target{GVK: schema.GroupVersionKind{Group: "kv.driftlab.io", Version: "v1alpha1", Kind: "KVCluster"}, Replicas: []string{"spec", "replicas"}}
	ops := []Op{{At: 0, Kind: OpScale, Name: "kv-0", Replicas: 1}}
	const end = 300 * time.Millisecond
	start := time.Now()
	if err := Run(context.Background(), c, target, "ns", ops, start, end, func(Op, error) {}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < end {
		t.Fatalf("Run returned after %v, before the workload's %v", took, end)
	}
	if len(c.patches) != 1 {
		t.Fatalf("patches %q", c.patches)
	}
}

// generateEager is Generate as it was before Ops: every operation made up
// front, then a stable sort by time. Ops must give the same sequence.
func generateEager(w scenarios.Workload, seed uint64, prefix string) []Op {
	r := Stream(seed, "workload")
	var ops []Op
	var live []string
	for i := 0; i < w.Objects; i++ {
		name := prefix + strconv.Itoa(i)
		live = append(live, name)
		ops = append(ops, Op{At: 0, Kind: OpCreate, Name: name, Replicas: between(r, w.InitialReplicas)})
	}
	end := w.Duration.Duration
	if every := w.Scale.Every.Duration; every > 0 && len(live) > 0 {
		for t := every; t < end; t += every {
			ops = append(ops, Op{At: t, Kind: OpScale, Name: live[r.IntN(len(live))], Replicas: between(r, w.Scale.Replicas)})
		}
	}
	if w.Annotate.Rate > 0 && len(live) > 0 {
		step := time.Duration(math.Round(float64(time.Second) / w.Annotate.Rate))
		n := 0
		for t := step; t < end; t += step {
			n++
			ops = append(ops, Op{At: t, Kind: OpAnnotate, Name: live[r.IntN(len(live))], Value: strconv.Itoa(n)})
		}
	}
	for i := 0; i < w.DeleteObjects; i++ {
		ops = append(ops, Op{At: end, Kind: OpDelete, Name: live[len(live)-1-i]})
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].At < ops[j].At })
	return ops
}

// TestOpsMatchTheEagerGeneration: the streamed operations are the ones
// (and in the order) Generate made as a slice, for random workloads with
// ties between scales and annotations, and NextAt tells each one's time.
func TestOpsMatchTheEagerGeneration(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	durations := []time.Duration{0, time.Millisecond, time.Second, 1500 * time.Millisecond, 20 * time.Second, time.Minute}
	for k := 0; k < 600; k++ {
		objects := r.IntN(6)
		w := scenarios.Workload{
			Duration:        scenarios.Duration{Duration: durations[r.IntN(len(durations))]},
			Objects:         objects,
			InitialReplicas: scenarios.IntRange{Min: r.IntN(3), Max: 3 + r.IntN(3)},
			Scale:           scenarios.Scale{Every: scenarios.Duration{Duration: []time.Duration{0, 200 * time.Millisecond, time.Second, 3 * time.Second}[r.IntN(4)]}, Replicas: scenarios.IntRange{Max: r.IntN(6)}},
			Annotate:        scenarios.Annotate{Rate: []float64{0, 1, 5, 0.3, 200}[r.IntN(5)]},
			DeleteObjects:   r.IntN(objects + 1),
		}
		seed := r.Uint64()
		want := generateEager(w, seed, "kv-")
		g := NewOps(w, seed, "kv-")
		if g.Len() != len(want) {
			t.Fatalf("%+v: Len %d, want %d", w, g.Len(), len(want))
		}
		for i := 0; ; i++ {
			at, more := g.NextAt()
			op, ok := g.Next()
			if ok != more || ok != (i < len(want)) {
				t.Fatalf("%+v: operation %d: ok %v, NextAt %v, want %d operations", w, i, ok, more, len(want))
			}
			if !ok {
				break
			}
			if op != want[i] || at != op.At {
				t.Fatalf("%+v seed %d: operation %d is %+v (NextAt %v), want %+v", w, seed, i, op, at, want[i])
			}
		}
	}
}

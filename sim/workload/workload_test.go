package workload

import (
	"reflect"
	"testing"
	"time"

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
	a, b := Generate(w, 7), Generate(w, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different operations")
	}
	if reflect.DeepEqual(a, Generate(w, 8)) {
		t.Fatal("different seeds gave identical operations")
	}
}

func TestGenerateFollowsTheWorkload(t *testing.T) {
	w := baselineWorkload(t)
	ops := Generate(w, 1)
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
	if counts[OpCreate] != w.Clusters || counts[OpDelete] != w.DeleteClusters || counts[OpAnnotate] != wantAnnotate {
		t.Fatalf("counts %v: want %d creates, %d deletes, %d annotates", counts, w.Clusters, w.DeleteClusters, wantAnnotate)
	}
	if want := int((w.Duration.Duration - 1) / w.Scale.Every.Duration); counts[OpScale] != want {
		t.Fatalf("%d scale ops, want %d", counts[OpScale], want)
	}
}

func TestExplicitOperationsReplaceTheGeneratedOnes(t *testing.T) {
	y := `name: imported
workload:
  duration: 5s
  clusters: 3
  annotate: {rate: 5}
  operations:
    - {at: 0s, op: create, cluster: shop-db, replicas: 2}
    - {at: 1500ms, op: scale, cluster: shop-db, replicas: 4}
    - {at: 2s, op: annotate, cluster: shop-db, key: example.com/owner, value: team-b}
    - {at: 2s, op: annotate, cluster: shop-db, value: "7"}
    - {at: 4s, op: delete, cluster: shop-db}
`
	s, err := scenarios.Parse("imported.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{At: 0, Kind: OpCreate, Cluster: "shop-db", Replicas: 2},
		{At: 1500 * time.Millisecond, Kind: OpScale, Cluster: "shop-db", Replicas: 4},
		{At: 2 * time.Second, Kind: OpAnnotate, Cluster: "shop-db", Key: "example.com/owner", Value: "team-b"},
		{At: 2 * time.Second, Kind: OpAnnotate, Cluster: "shop-db", Value: "7"},
		{At: 4 * time.Second, Kind: OpDelete, Cluster: "shop-db"},
	}
	for _, seed := range []uint64{1, 2} {
		if got := Generate(s.Workload, seed); !reflect.DeepEqual(got, want) {
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

package workload

import (
	"reflect"
	"testing"

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

package invariant

import (
	"math/rand/v2"
	"testing"

	"github.com/driftlab/driftlab/sim/history"
)

// TestReadyCountFollowsApply checks the count Apply keeps against the
// members it records, over a seeded stream of Pod events.
func TestReadyCountFollowsApply(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tr := NewTruth()
	tr.Apply(history.Record{Source: history.SourceTruth, Kind: history.KindClusterSpec, Cluster: "ns/kv"})
	pods := []string{"ns/kv-0", "ns/kv-1", "ns/kv-2", "ns/kv-3"}
	kinds := []string{history.KindPodCreated, history.KindPodReady, history.KindPodUnready, history.KindPodDeleted}
	for i := range 2000 {
		rec := history.Record{Source: history.SourceTruth, Kind: kinds[r.IntN(len(kinds))], Cluster: "ns/kv", Pod: pods[r.IntN(len(pods))]}
		tr.Apply(rec)
		c := tr.Clusters["ns/kv"]
		var want int32
		for _, ready := range c.ReadyPods {
			if ready {
				want++
			}
		}
		if got := c.ReadyCount(); got != want {
			t.Fatalf("step %d (%s %s): ReadyCount %d, members say %d", i, rec.Kind, rec.Pod, got, want)
		}
	}
}

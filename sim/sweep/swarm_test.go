package sweep

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
)

func incident(t *testing.T) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSwarmSameSeedSameSubset(t *testing.T) {
	s := incident(t)
	before := fmt.Sprint(s.Faults)
	for seed := uint64(1); seed <= 20; seed++ {
		a, onA := Swarm(s, seed)
		b, onB := Swarm(s, seed)
		if !slices.Equal(onA, onB) || fmt.Sprint(a.Faults) != fmt.Sprint(b.Faults) || a.Seed != seed {
			t.Fatalf("seed %d: %v then %v", seed, onA, onB)
		}
		for k, i := range onA {
			if a.Faults[k] != s.Faults[i] {
				t.Fatalf("seed %d: fault %d is not the scenario's fault %d", seed, k, i)
			}
		}
	}
	if fmt.Sprint(s.Faults) != before {
		t.Fatal("Swarm modified the scenario")
	}
	// The subset depends on the seed alone: not on the shard, the number of
	// workers, or the fault parameters.
	s.Operator.Bugs = []string{bugs.FreezeStatus} // every seed fails, so failures list every seed's subset
	for _, sh := range []struct{ shard, shards, workers int }{{0, 1, 1}, {1, 3, 2}, {2, 3, 1}} {
		r := Run(s, Options{Run: virtual.Verdict, Seeds: 12, Shard: sh.shard, Shards: sh.shards, Workers: sh.workers, Swarm: true})
		if len(r.Failures) != len(Seeds(1, 12, sh.shard, sh.shards)) {
			t.Fatalf("shard %d/%d: %d failures", sh.shard, sh.shards, len(r.Failures))
		}
		for _, f := range r.Failures {
			if _, on := Swarm(s, f.Seed); !slices.Equal(f.FaultsOn, on) {
				t.Fatalf("shard %d/%d seed %d: faults on %v, Swarm says %v", sh.shard, sh.shards, f.Seed, f.FaultsOn, on)
			}
		}
	}
	edited := incident(t)
	edited.Faults[0].Delay.Duration *= 3
	for seed := uint64(1); seed <= 20; seed++ {
		_, a := Swarm(s, seed)
		_, b := Swarm(edited, seed)
		if !slices.Equal(a, b) {
			t.Fatalf("seed %d: editing a fault's parameters changed the subset: %v vs %v", seed, a, b)
		}
	}
}

func TestSwarmSeedsChooseDifferentSubsets(t *testing.T) {
	s := incident(t)
	n := len(s.Faults)
	subsets := map[string]bool{}
	onCount := make([]int, n)
	const seeds = 64
	for seed := uint64(1); seed <= seeds; seed++ {
		_, on := Swarm(s, seed)
		subsets[fmt.Sprint(on)] = true
		for _, i := range on {
			onCount[i]++
		}
	}
	// 4 faults: 16 subsets, each fault on with probability 1/2.
	if len(subsets) < 10 {
		t.Fatalf("%d seeds chose only %d distinct subsets of %d: %v", seeds, len(subsets), 1<<n, subsets)
	}
	for i, c := range onCount {
		if c < seeds/4 || c > seeds*3/4 {
			t.Errorf("fault %d on in %d of %d seeds, want about half", i, c, seeds)
		}
	}
	if _, on := Swarm(&scenarios.Scenario{Name: "none"}, 1); len(on) != 0 {
		t.Fatalf("no faults, yet %v on", on)
	}
}

func TestSwarmFailureSaysWhichFaultsWereOnAndHowToReplay(t *testing.T) {
	s := incident(t)
	s.Operator.Bugs = []string{bugs.FreezeStatus}
	r := Run(s, Options{Run: virtual.Verdict, Seeds: 16, Swarm: true, Scenario: "scenarios/incident watch.yaml"})
	if len(r.Failures) != 16 {
		t.Fatalf("%d failures, want 16", len(r.Failures))
	}
	f := r.Failures[0]
	if f.Command != "driftlab run --backend virtual --seed 1 --swarm 'scenarios/incident watch.yaml'" ||
		f.Shrink != "driftlab shrink --seed 1 --swarm 'scenarios/incident watch.yaml'" {
		t.Fatalf("commands: %q, %q", f.Command, f.Shrink)
	}
	if want := fmt.Sprintf("%d of %d faults on", len(f.FaultsOn), len(s.Faults)); !strings.HasPrefix(f.Subset, want) {
		t.Fatalf("subset %q, want it to start %q", f.Subset, want)
	}
	for _, i := range f.FaultsOn {
		if !strings.Contains(f.Subset, fmt.Sprintf("[%d] %s", i, s.Faults[i].Type)) {
			t.Fatalf("subset %q does not name fault %d", f.Subset, i)
		}
	}
	// Per-fault figures add up to the runs and the failures.
	if len(r.Swarm) != len(s.Faults) {
		t.Fatalf("swarm stats for %d faults", len(r.Swarm))
	}
	for _, st := range r.Swarm {
		if st.On+st.Off != r.Runs || st.FailedOn+st.FailedOff != len(r.Failures) || st.On == 0 || st.Off == 0 {
			t.Fatalf("stats %+v over %d runs, %d failures", st, r.Runs, len(r.Failures))
		}
	}
	if r.ByInvariant["drift-convergence"] != 16 {
		t.Fatalf("by invariant: %v", r.ByInvariant)
	}
	// Without swarm the replay command has no --swarm and every fault is on.
	plain := Run(s, Options{Run: virtual.Verdict, Seeds: 2})
	if c := plain.Failures[0].Command; strings.Contains(c, "--swarm") || plain.Failures[0].FaultsOn != nil || plain.Swarm != nil {
		t.Fatalf("plain sweep: %+v", plain.Failures[0])
	}
}

// A swarm run that keeps every fault is the run without swarm: swarm
// draws from its own stream and leaves the run's streams alone.
func TestSwarmWithEveryFaultIsThePlainRun(t *testing.T) {
	s := incident(t)
	for seed := uint64(1); seed < 200; seed++ {
		sub, on := Swarm(s, seed)
		if len(on) != len(s.Faults) {
			continue
		}
		plain := *s
		plain.Seed = seed
		a, err := virtual.Run(sub, virtual.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := virtual.Run(&plain, virtual.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: swarm with every fault %s, plain %s", seed, a.TraceHash, b.TraceHash)
		}
		return
	}
	t.Fatal("no seed in 1..199 keeps every fault")
}

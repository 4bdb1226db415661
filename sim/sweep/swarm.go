package sweep

import (
	"fmt"
	"strings"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/workload"
)

// SwarmStream is the name of the PCG stream (workload.Stream) that chooses a
// seed's fault subset. It is derived from the seed alone, so a seed chooses
// the same subset on every machine, shard and run.
const SwarmStream = "swarm"

// Swarm returns a copy of s with the subset of its faults that seed switches
// on (swarm testing, FoundationDB's BUGGIFY idea): each fault is on with
// probability 1/2, independently, drawn from SwarmStream. on lists the
// indexes (in s.Faults) of the faults kept. The draws depend on the seed
// and the number of faults only, never on the faults' contents, so editing
// a fault's parameters keeps the subset a seed chooses. s is not modified.
func Swarm(s *scenarios.Scenario, seed uint64) (out *scenarios.Scenario, on []int) {
	c := *s
	c.Seed = seed
	c.Faults = nil
	r := workload.Stream(seed, SwarmStream)
	for i, f := range s.Faults {
		if r.IntN(2) == 1 {
			c.Faults = append(c.Faults, f)
			on = append(on, i)
		}
	}
	if c.Faults == nil {
		c.Faults = []scenarios.Fault{}
	}
	return &c, on
}

// DescribeSubset says which faults of s a swarm subset keeps, for failure
// reports: "2 of 4 faults on: [0] wal-fsync-delay from 2s for 23s; [3] …".
func DescribeSubset(s *scenarios.Scenario, on []int) string {
	if len(s.Faults) == 0 {
		return "the scenario has no faults"
	}
	if len(on) == 0 {
		return fmt.Sprintf("0 of %d faults on", len(s.Faults))
	}
	parts := make([]string, len(on))
	for k, i := range on {
		parts[k] = fmt.Sprintf("[%d] %s", i, Describe(&s.Faults[i]))
	}
	return fmt.Sprintf("%d of %d faults on: %s", len(on), len(s.Faults), strings.Join(parts, "; "))
}

// Describe names a fault for sweep reports: its schedule (Fault.Describe)
// and, for a network fault, its link, so that two faults of one type can be
// told apart.
func Describe(f *scenarios.Fault) string {
	if f.Link != "" {
		return f.Describe() + " on " + f.Link
	}
	return f.Describe()
}

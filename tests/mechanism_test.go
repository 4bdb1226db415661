package tests

import (
	"testing"

	"github.com/driftlab/driftlab/scenarios"
)

// burstScenario is a short run with bursty loss on the operator's link
// (blackouts of 1–3 s every 8 s from 10 s to 30 s) and a real path's
// buffering, under a workload that keeps the operator's watches busy.
const burstScenario = `name: burst-mechanism
seed: 1
kubelet:
  readyDelay: {distribution: uniform, min: 2s, max: 20s}
workload:
  duration: 40s
  objects: 4
  initialReplicas: {min: 3, max: 5}
  scale: {every: 3s, replicas: {min: 2, max: 6}}
  annotate: {rate: 10}
faults:
  - {type: network-retransmit, link: operator-apiserver, backpressure: true, burst: {every: 8s, length: {min: 1s, max: 3s}}, start: 10s, duration: 20s}
invariants:
  drift: {convergeWithin: 60s, staleness: 30s}
`

// TestBurstMechanismCounted: under bursts on the operator's link, the
// summary counts what the mechanism does inside the window (connections
// frozen for seconds, watchers kube-apiserver terminated, the operator's
// watches ending and relisting), against the same run outside the window.
// Rates per second, in the run's own terms: no wall-clock threshold.
func TestBurstMechanismCounted(t *testing.T) {
	needControlPlane(t)
	s, err := scenarios.Parse("burst-mechanism.yaml", []byte(burstScenario))
	if err != nil {
		t.Fatal(err)
	}
	sum := runReference(t, s)
	f := oneFault(t, sum)
	if f.Effect["stalls_over_1s"] < 1 || f.Effect["blackouts"] < 2 {
		t.Errorf("the bursts froze no connection for a second: effect %v", f.Effect)
	}
	in, out := f.Plane, sum.PlaneOutside
	if in == nil || out == nil || in.Samples < 10 || out.Samples < 10 {
		t.Fatalf("plane samples missing: window %+v, outside %+v", in, out)
	}
	t.Logf("window: %+v", *in)
	t.Logf("outside: %+v", *out)
	// What ends a watch early: the apiserver terminating it, a lost
	// connection, 410 Gone, and the relists that follow.
	early := func(p map[string]int) int { return p["terminated"] + p["connection-lost"] + p["gone"] + p["error"] }
	inN := in.TerminatedWatchers + float64(early(in.WatchEnds)+in.Relists)
	outN := out.TerminatedWatchers + float64(early(out.WatchEnds)+out.Relists)
	inRate, outRate := inN/in.Seconds, outN/out.Seconds
	t.Logf("terminated watchers + early watch ends + relists: %.0f in the %.0f s window (%.3f/s), %.0f in %.0f s outside (%.3f/s)",
		inN, in.Seconds, inRate, outN, out.Seconds, outRate)
	if inN < 1 || inRate <= 2*outRate {
		t.Errorf("the window shows no more ended watches than outside: %.3f/s against %.3f/s", inRate, outRate)
	}
}

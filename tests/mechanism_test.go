package tests

import (
	"testing"

	"github.com/driftlab/driftlab/scenarios"
)

// burstScenario is a short run with bursty loss on the operator's link
// (blackouts of 3.2–4.5 s every 6 s from 10 s to 34 s) and a real path's
// buffering, under a workload that keeps the operator's watches busy: 150
// annotations a second on four KVClusters, about 180 KiB/s of watch
// events. A blackout over 3 s freezes the connection for 6.2 s (RTOs 0.2,
// 0.4, 0.8, 1.6, 3.2 s), and a retransmission that lands in the next
// blackout doubles it again, past what kube-apiserver buffers for the
// watcher: its send buffer (69 KiB at first; on loopback BBR grows it to
// 1.35 MiB once a backlog has been flushed) and the watcher's channels
// (about a second of events each). Milder settings (80 a second, 3 s
// freezes) terminated a watcher in some runs only.
const burstScenario = `name: burst-mechanism
seed: 1
kubelet:
  readyDelay: {distribution: uniform, min: 2s, max: 20s}
workload:
  duration: 44s
  objects: 4
  initialReplicas: {min: 3, max: 5}
  scale: {every: 3s, replicas: {min: 2, max: 6}}
  annotate: {rate: 150}
faults:
  - {type: network-retransmit, link: operator-apiserver, backpressure: true, burst: {every: 6s, length: {min: 3200ms, max: 4500ms}}, start: 10s, duration: 24s}
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
	// kube-apiserver counts the watchers it terminated when it does; the
	// operator sees its watch end only when the frozen connection
	// delivers again, which may be after the window, so its early ends
	// are counted over the whole run.
	early := func(p map[string]int) int { return p["terminated"] + p["connection-lost"] + p["gone"] + p["error"] }
	inN, outN := in.TerminatedWatchers+float64(in.Relists), out.TerminatedWatchers+float64(out.Relists)
	inRate, outRate := inN/in.Seconds, outN/out.Seconds
	t.Logf("terminated watchers + relists: %.0f in the %.0f s window (%.3f/s), %.0f in %.0f s outside (%.3f/s); the operator's early watch ends %v in the window, %v after it",
		inN, in.Seconds, inRate, outN, out.Seconds, outRate, in.WatchEnds, out.WatchEnds)
	if inN < 1 || inRate <= 2*outRate {
		t.Errorf("the window shows no more terminated watchers and relists than outside: %.3f/s against %.3f/s", inRate, outRate)
	}
	if early(in.WatchEnds)+early(out.WatchEnds) < 1 {
		t.Errorf("the operator saw none of its watches end early")
	}
}

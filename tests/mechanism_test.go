package tests

import (
	"fmt"
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

// relistScenario is the incident's relist chain in a short run: 1.5–2.5 s
// blackouts every 6 s on the operator's link, with (tight) or without
// (client-go's default) an HTTP/2 health check that closes a connection
// silent for 2 s. %s is the operator section.
const relistScenario = `name: relist-mechanism
seed: 1
kubelet:
  readyDelay: {distribution: uniform, min: 4s, max: 26s}
workload:
  duration: 30s
  objects: 6
  initialReplicas: {min: 3, max: 5}
  annotate: {rate: 150}
faults:
  - {type: network-retransmit, link: operator-apiserver, backpressure: true, burst: {every: 6s, length: {min: 1500ms, max: 2500ms}}, start: 2s, duration: 26s}
invariants:
  drift: {convergeWithin: 90s, staleness: 60s}
%s`

// TestRelistMechanism: a tight HTTP/2 health check turns the link's
// freezes into closed connections, so the operator's watches end with an
// error and its reflectors relist after client-go's growing backoff, and
// the status lag inside the window grows past what the freezes alone
// cost (the same scenario with client-go's defaults: the incident's fix).
// Both runs are in this test, so the comparison holds on a busy machine.
func TestRelistMechanism(t *testing.T) {
	needControlPlane(t)
	run := func(name, operator string) (float64, int, int) {
		return windowWatches(t, name, fmt.Sprintf(relistScenario, operator))
	}
	tightMean, tightRelists, tightLost := run("tight", "operator:\n  env: {HTTP2_READ_IDLE_TIMEOUT_SECONDS: \"1\", HTTP2_PING_TIMEOUT_SECONDS: \"1\"}\n")
	defMean, defRelists, defLost := run("default", "")
	if tightLost < 1 || tightRelists < 2 {
		t.Errorf("tight health check: %d watches lost with their connection, %d relists; want the freezes to close connections and the reflectors to relist", tightLost, tightRelists)
	}
	if defLost != 0 || defRelists >= tightRelists {
		t.Errorf("default health check: %d watches lost, %d relists (tight: %d); want no closed connection and fewer relists", defLost, defRelists, tightRelists)
	}
	if !(tightMean > 1.5*defMean) {
		t.Errorf("window mean lag %.0f ms with the tight health check, %.0f ms with the default: want the relists to add half again", tightMean, defMean)
	}
}

// windowWatches runs a one-fault scenario (text) on the reference
// operator and returns the status lag's mean inside the fault window, and
// the operator's relists and watches lost with their connection over the
// run (a relist backed off past the window counts).
func windowWatches(t *testing.T, name, text string) (mean float64, relists, lost int) {
	t.Helper()
	s, err := scenarios.Parse("mechanism.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	sum := runReference(t, s)
	f := oneFault(t, sum)
	if f.Plane == nil || f.Window == nil {
		t.Fatalf("%s: no plane samples or latency in the window", name)
	}
	relists, lost = f.Plane.Relists, f.Plane.WatchEnds["connection-lost"]
	if o := sum.PlaneOutside; o != nil {
		relists += o.Relists
		lost += o.WatchEnds["connection-lost"]
	}
	t.Logf("%s: window mean %.0f ms over %d samples, relists %d, watches lost with their connection %d",
		name, f.Window.Latency.Mean, f.Window.Latency.Count, relists, lost)
	return f.Window.Latency.Mean, relists, lost
}

// deadFlowScenario is the incident's chain in a short run: one blackout
// of the established flows on the operator's link (15–17 s from between
// 3 and 8 s in), which only the operator's HTTP/2 health check can
// notice; %d and %d are the check's two timeouts in seconds.
const deadFlowScenario = `name: dead-flow-mechanism
seed: 1
kubelet:
  readyDelay: {distribution: uniform, min: 2s, max: 16s}
workload:
  duration: 28s
  objects: 6
  initialReplicas: {min: 3, max: 5}
  scale: {every: 1s, replicas: {min: 2, max: 6}}
  annotate: {rate: 20}
faults:
  - {type: network-retransmit, link: operator-apiserver, backpressure: true, burst: {every: 22s, length: {min: 15s, max: 17s}, established: true}, start: 3s, duration: 22s}
invariants:
  drift: {convergeWithin: 90s, staleness: 60s}
operator:
  env: {HTTP2_READ_IDLE_TIMEOUT_SECONDS: "%d", HTTP2_PING_TIMEOUT_SECONDS: "%d"}
`

// TestDeadFlowMechanism: when the link drops its established flows, the
// operator's informers are blind until its HTTP/2 health check closes the
// connection (read-idle plus ping timeout) and they relist on a new one,
// which the blackout spares. With a check that takes 12 s the window's
// lag is well above the same run with one that takes 3 s; both close
// the connection and relist. Both runs are in this test, so the
// comparison holds on a busy machine.
func TestDeadFlowMechanism(t *testing.T) {
	needControlPlane(t)
	run := func(name string, idle, ping int) (float64, int, int) {
		return windowWatches(t, fmt.Sprintf("%s (%d s + %d s)", name, idle, ping), fmt.Sprintf(deadFlowScenario, idle, ping))
	}
	slowMean, slowRelists, slowLost := run("slow", 8, 4)
	fastMean, fastRelists, fastLost := run("fast", 2, 1)
	for _, r := range []struct {
		name          string
		relists, lost int
	}{{"12 s check", slowRelists, slowLost}, {"3 s check", fastRelists, fastLost}} {
		if r.lost < 1 || r.relists < 1 {
			t.Errorf("%s: %d watches lost with their connection, %d relists; want the dead flow closed by the health check and the informers relisting", r.name, r.lost, r.relists)
		}
	}
	if !(slowMean > 1.5*fastMean) {
		t.Errorf("window mean lag %.0f ms with the 12 s check, %.0f ms with the 3 s check: want the longer blindness to show", slowMean, fastMean)
	}
}

package faults

import (
	"errors"
	"fmt"
	"testing"

	"github.com/driftlab/driftlab/scenarios"
)

func TestBuildClaimsWhatFaultsNeed(t *testing.T) {
	s, err := scenarios.Parse("t.yaml", []byte(`name: t
faults:
  - {type: network-retransmit, link: operator-apiserver, loss: 0.1, start: 1s}
  - {type: watcher-exhaustion, maxConcurrentStreams: 64, start: 1s}
  - {type: gc-assist-pressure, start: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(1)
	p.OperatorCommands = true
	defer p.Close()
	built, skipped, err := Build(s.Faults, p)
	if err != nil || len(skipped) != 0 || len(built) != 3 {
		t.Fatalf("built %d, skipped %v, err %v", len(built), skipped, err)
	}
	if !p.Wants(scenarios.LinkOperatorAPIServer) || p.Wants(scenarios.LinkAPIServerEtcd) {
		t.Error("the retransmit fault did not claim exactly its link")
	}
	if p.MaxConcurrentStreams != 64 {
		t.Errorf("MaxConcurrentStreams = %d, want 64", p.MaxConcurrentStreams)
	}
	for i, f := range built {
		if f.Spec().Type != s.Faults[i].Type {
			t.Errorf("fault %d built as %s", i, f.Spec().Type)
		}
	}
}

func TestUnknownTypeIsSkippedNotRun(t *testing.T) {
	_, skipped, err := Build([]scenarios.Fault{{Type: "disk-full"}}, NewPlan(1))
	if err != nil || skipped[0] == "" {
		t.Fatalf("skipped %v, err %v", skipped, err)
	}
}

func TestSkipped(t *testing.T) {
	err := fmt.Errorf("building: %w", &SkipError{Reason: "no /dev/fuse"})
	if r, ok := Skipped(err); !ok || r != "no /dev/fuse" {
		t.Fatalf("Skipped(%v) = %q, %v", err, r, ok)
	}
	if _, ok := Skipped(errors.New("other")); ok {
		t.Fatal("a plain error is not a skip")
	}
}

func TestProxyLifecycle(t *testing.T) {
	p := NewPlan(1)
	addr, err := p.StartProxy(scenarios.LinkAPIServerEtcd, "127.0.0.1:1")
	if err != nil || addr == "" || p.Proxy(scenarios.LinkAPIServerEtcd) == nil {
		t.Fatalf("StartProxy: %q, %v", addr, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Proxy(scenarios.LinkAPIServerEtcd) != nil {
		t.Fatal("proxy still there after Close")
	}
}

// TestOperatorSideFaultSkippedWithoutCommands: gc-assist-pressure acts
// inside the operator's process; for an operator that takes no harness
// commands (anyone's but the reference operator) it is skipped with the
// reason, so the run cannot pass as if it had been injected.
func TestOperatorSideFaultSkippedWithoutCommands(t *testing.T) {
	p := NewPlan(1)
	defer p.Close()
	built, skipped, err := Build([]scenarios.Fault{{Type: scenarios.FaultGCAssistPressure, Entries: 10, Rate: 1}}, p)
	if err != nil || len(built) != 0 || skipped[0] != NeedsCommands {
		t.Fatalf("built %d, skipped %v, err %v: want it skipped with %q", len(built), skipped, err, NeedsCommands)
	}
}

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
)

// TestClusterBackendAnyKindAndExternalOperator: the cluster backend judges
// an operator it does not run (external) on a kind that is not the
// reference operator's: a cluster with a controller-manager (a local
// plane with a world stands in for it) and the built-in deployment-world
// scenario, whose subject is the Deployment. Truth comes from the
// apiserver's watches of Deployments, ReplicaSets and Pods; what the
// controller-manager reports, from the Deployments' committed status. A
// scenario fault the backend cannot inject (no chaos objects given) is
// skipped, and the run must then not pass: an earlier cluster backend
// passed such runs.
func TestClusterBackendAnyKindAndExternalOperator(t *testing.T) {
	needControlPlane(t)
	env, err := local.Start(context.Background(), local.Config{Dir: t.TempDir(), World: &scenarios.World{Nodes: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	run := func(name string, args ...string) (int, report.Summary) {
		dir := runDir(t, name)
		var out, errb bytes.Buffer
		code := cli.Main(append([]string{"run", "--backend", "cluster", "--kubeconfig", env.Kubeconfig, "--operator", "external", "--out", dir, "--no-report", "-q"}, args...), &out, &errb)
		t.Log(out.String(), errb.String())
		var sum report.Summary
		if b, err := os.ReadFile(filepath.Join(dir, "summary.json")); err == nil {
			_ = json.Unmarshal(b, &sum)
		}
		return code, sum
	}
	code, sum := run("cluster-deployment-world", "deployment-world")
	if code != cli.ExitOK || !sum.Passed || sum.Subject != "apps/v1, Kind=Deployment" || sum.Operator != "kube-controller-manager" || sum.Latency.Count < 3 {
		t.Fatalf("exit %d: passed %v, subject %q, operator %q, %d latency samples", code, sum.Passed, sum.Subject, sum.Operator, sum.Latency.Count)
	}

	// The same with a fault and no chaos objects: skipped, so not passed.
	s, err := scenarios.Builtin("deployment-world")
	if err != nil {
		t.Fatal(err)
	}
	s.Name = "deployment-world-fault"
	s.Faults = []scenarios.Fault{{Type: scenarios.FaultWALFsyncDelay, Start: scenarios.Duration{Duration: 1e9}, Delay: scenarios.Duration{Duration: 5e7}}}
	if err := s.SetDefaults(); err != nil {
		t.Fatal(err)
	}
	y, err := scenarios.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "fault.yaml")
	if err := os.WriteFile(file, y, 0o644); err != nil {
		t.Fatal(err)
	}
	code, sum = run("cluster-deployment-world-fault", file)
	if code != cli.ExitFailed || sum.Passed || len(sum.Faults) != 1 || sum.Faults[0].Skipped == "" {
		t.Fatalf("a skipped fault: exit %d, passed %v, faults %+v; want exit %d and not passed", code, sum.Passed, sum.Faults, cli.ExitFailed)
	}
}

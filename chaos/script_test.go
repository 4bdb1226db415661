package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
)

// chaosScript runs scripts/chaos.sh (what `make chaos` runs) with env added.
func chaosScript(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "chaos.sh"))
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMakeChaosFailsFastWithoutTools: where docker has no engine (a client
// that fails `docker info`, as on these machines) or is missing, and helm is
// missing, make chaos stops before doing anything and names each missing
// tool with how to get it.
func TestMakeChaosFailsFastWithoutTools(t *testing.T) {
	bin := t.TempDir()
	fake := filepath.Join(bin, "docker")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, c := range []struct{ docker, want string }{
		{fake, "docker: the client is there but no engine answers"},
		{filepath.Join(bin, "no-such-docker"), "docker: not installed. Install Docker Engine"},
	} {
		t0 := time.Now()
		got, err := chaosScript(t, "DOCKER="+c.docker, "HELM="+filepath.Join(bin, "no-helm"), "OUT="+out, "DRIFTLAB_BIN="+filepath.Join(out, "driftlab"))
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("exit %v, want 2; output:\n%s", err, got)
		}
		for _, want := range []string{c.want, "helm: not installed. Install Helm 3", "make chaos DRY_RUN=1"} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "\n+ ") || strings.HasPrefix(got, "+ ") {
			t.Errorf("it ran commands before stopping:\n%s", got)
		}
		if _, err := os.Stat(filepath.Join(out, "driftlab")); err == nil {
			t.Error("it built driftlab before stopping")
		}
		t.Logf("stopped after %s", time.Since(t0).Round(time.Millisecond))
	}
}

// TestMakeChaosDryRunPrintsThePlan: DRY_RUN=1 prints every step (kind at
// the pinned version, the image, helm's pinned Chaos Mesh, the operator,
// the cluster run) and every object it would apply, including the
// scenario's exported Chaos Mesh objects, without docker.
func TestMakeChaosDryRunPrintsThePlan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds driftlab; skipped with -short")
	}
	out := t.TempDir()
	got, err := chaosScript(t, "DRY_RUN=1", "SCENARIO=scenarios/incident-watch-lag.yaml", "DOCKER=/nonexistent/docker",
		"OUT="+out, "DRIFTLAB_BIN="+filepath.Join(out, "driftlab"))
	if err != nil {
		t.Fatalf("%v:\n%s", err, got)
	}
	for _, want := range []string{
		"+ go run sigs.k8s.io/kind@v0.33.0 create cluster --name driftlab --config deploy/kind.yaml",
		"+ /nonexistent/docker build -f deploy/Dockerfile -t driftlab:dev .",
		"load docker-image --name driftlab driftlab:dev registry.local/driftlab/kv-member:sim",
		"helm upgrade --install chaos-mesh chaos-mesh/chaos-mesh --version 2.7.2",
		"apply -f deploy/config/crd/kv.driftlab.io_kvclusters.yaml",
		"rollout status deployment/driftlab-operator",
		"run --backend cluster --kubeconfig " + out + "/kubeconfig --operator external --simulated-kubelet=false --chaos " + out + "/chaos.yaml",
		"kind: CustomResourceDefinition", "kind: ClusterRole", "kind: Deployment",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dry run lacks %q", want)
		}
	}
	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Build(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := e.YAML()
	if !strings.Contains(got, string(exported)) {
		t.Errorf("the dry run does not print the exported Chaos Mesh objects:\n%s", got)
	}

	// gc-assist-pressure's own heap growth becomes an operator flag, added
	// to the operator's Deployment before the workload starts.
	got, err = chaosScript(t, "DRY_RUN=1", "SCENARIO=scenarios/gc-assist-pressure.yaml", "DOCKER=/nonexistent/docker",
		"OUT="+out, "DRIFTLAB_BIN="+filepath.Join(out, "driftlab"))
	if err != nil {
		t.Fatalf("%v:\n%s", err, got)
	}
	patch := `patch deployment/driftlab-operator --type json -p [{"op":"add","path":"/spec/template/spec/containers/0/command/-","value":"--gc-pressure=entries=500000,rate=8,after=5s,for=10s"}]`
	if !strings.Contains(got, patch) {
		t.Errorf("the gc-assist-pressure dry run lacks %q:\n%s", patch, got)
	}
}

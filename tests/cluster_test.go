package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/driftlab/driftlab/chaos"
	"github.com/driftlab/driftlab/internal/cli"
	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/cluster"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
)

// TestClusterBackend treats an envtest kube-apiserver (with its embedded
// etcd) as an existing cluster and runs scenarios on it through the
// cluster backend, which only has the kubeconfig:
//
//   - `driftlab run --backend cluster --kubeconfig K --operator in-process
//     baseline` (operator.Run in the harness) passes and writes the usual
//     summary;
//   - the negative control, the operator with the freeze-status bug (in
//     its own process: one process can run the in-process operator once),
//     fails the drift invariant; that run also creates exported chaos
//     objects (the watchstorm Job of watcher-exhaustion) at the workload's
//     start, reports the fault's window, and deletes them at the end.
func TestClusterBackend(t *testing.T) {
	needControlPlane(t)
	ctx := context.Background()
	env, err := local.Start(ctx, local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()

	t.Run("baseline passes through the CLI", func(t *testing.T) {
		dir := runDir(t, "cluster-baseline")
		var out, errb bytes.Buffer
		code := cli.Main([]string{"run", "--backend", "cluster", "--kubeconfig", env.Kubeconfig, "--operator", "in-process", "--out", dir, "--no-report", "-q", "baseline"}, &out, &errb)
		t.Log(out.String(), errb.String())
		if code != cli.ExitOK {
			t.Fatalf("exit %d, want 0", code)
		}
		var sum report.Summary
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Backend != "cluster" || !sum.Passed || sum.Latency.Count < 10 || sum.Counts[history.KindStatusWrite] == 0 || sum.Counts[history.KindReconcileEnd] == 0 {
			t.Errorf("summary: backend %s passed %v, %d latency samples, counts %v", sum.Backend, sum.Passed, sum.Latency.Count, sum.Counts)
		}
		// It cleaned up after itself.
		c, _ := client.New(env.Admin, client.Options{Scheme: operator.Scheme()})
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace("default")); err != nil || len(pods.Items) != 0 {
			t.Errorf("%d Pods left in default (err %v)", len(pods.Items), err)
		}
	})

	t.Run("freeze-status fails drift; chaos objects are applied", func(t *testing.T) {
		s, err := scenarios.Builtin("watcher-exhaustion")
		if err != nil {
			t.Fatal(err)
		}
		s.Operator.Bugs = []string{bugs.FreezeStatus}
		s.Workload.Namespace = "negative"
		s.Workload.Duration.Duration = s.Faults[0].Start.Duration + s.Faults[0].Duration.Duration // 15s
		s.Invariants.Drift.ConvergeWithin.Duration = 5e9
		exp, err := chaos.Build(s, chaos.Options{})
		if err != nil {
			t.Fatal(err)
		}
		yml, _ := exp.YAML()
		chaosFile := filepath.Join(t.TempDir(), "chaos.yaml")
		if err := os.WriteFile(chaosFile, yml, 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := cluster.LoadChaos(chaosFile)
		if err != nil || len(objs) != 1 || objs[0].GetKind() != "Job" {
			t.Fatalf("LoadChaos: %v, %d objects", err, len(objs))
		}
		c, _ := client.New(env.Admin, client.Options{Scheme: operator.Scheme()})
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chaos.DefaultNamespace}}); err != nil {
			t.Fatal(err)
		}
		sum, err := cluster.Run(ctx, s, cluster.Options{Dir: runDir(t, "cluster-freeze"), Config: env.Admin,
			System: reference(t, s), Chaos: objs})
		var buf bytes.Buffer
		if sum != nil {
			sum.Print(&buf)
		}
		t.Log(buf.String())
		if err != nil {
			t.Fatalf("run failed: %v", err)
		}
		if sum.Passed || invariantResult(t, sum, "drift-convergence").Passed {
			t.Error("the freeze-status operator passed the drift invariant on the cluster backend")
		}
		f := sum.Faults[0]
		if f.Skipped != "" || f.Error != "" || f.Window == nil || f.Window.StartMs < 4500 || f.Window.EndMs-f.Window.StartMs < 9500 {
			t.Errorf("fault window %+v (skipped %q, error %q): want 5s..15s of the workload", f.Window, f.Skipped, f.Error)
		}
		if !invariantResult(t, sum, "faults").Passed {
			t.Error("faults check failed although the chaos objects cover the fault")
		}
		hist, _ := os.ReadFile(filepath.Join(sum.Dir, "history.jsonl"))
		if !strings.Contains(string(hist), `"kind":"chaos-created","detail":"Job driftlab-system/driftlab-watcher-exhaustion-watchstorm-0"`) {
			t.Error("history has no chaos-created record of the Job")
		}
		var jobs batchv1.JobList
		if err := c.List(ctx, &jobs, client.InNamespace(chaos.DefaultNamespace)); err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs.Items {
			if j.DeletionTimestamp == nil {
				t.Errorf("Job %s left behind", j.Name)
			}
		}
	})
}

// TestClusterBackendCreatesExportedChaos is `make chaos` without kind: the
// incident scenario's export (a Workflow of IOChaos and NetworkChaos, and
// the watchstorm Job) is created by the cluster backend at the start of
// the workload in an apiserver that has Chaos Mesh's CRDs (generated from
// its api types), every fault's window is reported by the scenario's
// schedule, and the objects are gone afterwards. (Nothing injects here:
// no Chaos Mesh controller runs in envtest.)
func TestClusterBackendCreatesExportedChaos(t *testing.T) {
	needControlPlane(t)
	root, _ := filepath.Abs("..")
	cg := os.Getenv("CONTROLLER_GEN")
	if cg == "" {
		m, _ := filepath.Glob(filepath.Join(root, "bin", "controller-gen-*"))
		if len(m) == 0 {
			t.Fatal("controller-gen not built: run `make controller-gen` (make test does it)")
		}
		cg = m[len(m)-1]
	}
	crdDir := t.TempDir()
	gen := exec.Command(cg, "crd:allowDangerousTypes=true,maxDescLen=0", "paths=github.com/chaos-mesh/chaos-mesh/api/v1alpha1", "output:crd:dir="+crdDir)
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, out)
	}
	ctrllog.SetLogger(logr.Discard()) // envtest's CRD installer logs through it
	ctx := context.Background()
	env, err := local.Start(ctx, local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	if _, err := envtest.InstallCRDs(env.Admin, envtest.CRDInstallOptions{Paths: []string{crdDir}}); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(env.Admin, client.Options{Scheme: operator.Scheme()})
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chaos.DefaultNamespace}}); err != nil {
		t.Fatal(err)
	}

	s, err := scenarios.Builtin("incident-watch-lag")
	if err != nil {
		t.Fatal(err)
	}
	s.Workload.Duration.Duration = 8e9
	s.Workload.Objects = 2
	s.Kubelet.ReadyDelay.Min.Duration, s.Kubelet.ReadyDelay.Max.Duration = 1e8, 5e8
	for i := range s.Faults {
		s.Faults[i].Start.Duration, s.Faults[i].Duration.Duration = 2e9, 4e9
	}
	exp, err := chaos.Build(s, chaos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	yml, _ := exp.YAML()
	chaosFile := filepath.Join(t.TempDir(), "chaos.yaml")
	if err := os.WriteFile(chaosFile, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := cluster.LoadChaos(chaosFile)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := cluster.Run(ctx, s, cluster.Options{Dir: runDir(t, "cluster-chaos"), Config: env.Admin,
		System: reference(t, s), Chaos: objs})
	var buf bytes.Buffer
	if sum != nil {
		sum.Print(&buf)
	}
	t.Log(buf.String())
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if len(sum.Faults) != 4 {
		t.Fatalf("%d faults", len(sum.Faults))
	}
	for _, f := range sum.Faults {
		if f.Skipped != "" || f.Error != "" || f.Window == nil || f.Window.StartMs < 1500 || f.Window.EndMs-f.Window.StartMs < 3500 {
			t.Errorf("fault %d %s: window %+v, skipped %q, error %q; want 2s..6s of the workload", f.Index, f.Type, f.Window, f.Skipped, f.Error)
		}
	}
	if !invariantResult(t, sum, "faults").Passed {
		t.Error("the faults check failed")
	}
	hist, _ := os.ReadFile(filepath.Join(sum.Dir, "history.jsonl"))
	for _, want := range []string{`"detail":"Workflow driftlab-system/driftlab-incident-watch-lag"`, `"detail":"Job driftlab-system/driftlab-incident-watch-lag-watchstorm-3"`} {
		if !strings.Contains(string(hist), `"kind":"chaos-created",`+want) {
			t.Errorf("history lacks chaos-created %s", want)
		}
	}
	wf := &unstructured.Unstructured{}
	wf.SetAPIVersion("chaos-mesh.org/v1alpha1")
	wf.SetKind("Workflow")
	err = c.Get(ctx, client.ObjectKey{Namespace: chaos.DefaultNamespace, Name: "driftlab-incident-watch-lag"}, wf)
	if err == nil && wf.GetDeletionTimestamp() == nil {
		t.Error("the Workflow is left behind")
	}
}

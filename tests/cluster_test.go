package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
			Operator: cluster.ProcessOperator(s, t.TempDir(), nil), Chaos: objs})
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

package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/driftlab/driftlab/operator"
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/operator/config/crd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func skipWithoutAPIServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane; skipped with -short")
	}
	if _, err := FindKubeAPIServer(); err != nil {
		t.Fatalf("%v", err)
	}
}

// TestStartStop starts the control plane, uses it, stops it and checks that
// nothing is left behind: no goroutines, no etcd data directory.
func TestStartStop(t *testing.T) {
	skipWithoutAPIServer(t)
	defer goleak.VerifyNone(t, leakOptions()...)

	dir := t.TempDir()
	crds, err := crd.Load()
	if err != nil {
		t.Fatal(err)
	}
	env, err := Start(context.Background(), Config{Dir: dir, CRDs: crds})
	if err != nil {
		t.Fatal(err)
	}
	dataDir := env.dataDir
	t.Logf("start-up: etcd %s, kube-apiserver %s, CRDs %s", env.Startup.Etcd, env.Startup.APIServer, env.Startup.CRDs)
	if env.Startup.Etcd <= 0 || env.Startup.APIServer <= 0 {
		t.Errorf("start-up times not measured: %+v", env.Startup)
	}
	if h := env.EtcdURL.Hostname(); h != "127.0.0.1" {
		t.Errorf("etcd listens on %s, want 127.0.0.1", h)
	}
	if !strings.Contains(env.Admin.Host, "127.0.0.1") {
		t.Errorf("apiserver at %s, want 127.0.0.1", env.Admin.Host)
	}
	st, err := os.Stat(env.Kubeconfig)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig %s: mode %v, err %v; want 0600", env.Kubeconfig, st.Mode().Perm(), err)
	}

	c, err := client.New(env.Admin, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	kv := &kvv1.KVCluster{}
	kv.Namespace, kv.Name, kv.Spec.Replicas = "default", "smoke", 2
	if err := c.Create(context.Background(), kv); err != nil {
		t.Fatalf("creating a KVCluster (CRD installed?): %v", err)
	}
	// kubectl, as a user would, through the written kubeconfig.
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "get", "kvclusters", "-A").CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "smoke") {
			t.Errorf("kubectl get kvclusters: %v\n%s", err, out)
		}
	} else {
		t.Log("kubectl not installed; skipped the kubectl check")
	}

	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("etcd data dir %s left behind", dataDir)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd.log")); err != nil {
		t.Errorf("etcd.log missing: %v", err)
	}
}

package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

func TestSweepJobIsAnIndexedJobOverShards(t *testing.T) {
	b, err := os.ReadFile("sweep-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{}
	if err := yaml.UnmarshalStrict(b, job); err != nil {
		t.Fatalf("sweep-job.yaml: %v", err)
	}
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatal("not an Indexed Job")
	}
	n := *job.Spec.Completions
	cmd := strings.Join(append(job.Spec.Template.Spec.Containers[0].Command, job.Spec.Template.Spec.Containers[0].Args...), " ")
	if !strings.Contains(cmd, `--shard "${JOB_COMPLETION_INDEX}/8"`) || n != 8 {
		t.Fatalf("shards (%s) do not match completions (%d)", cmd, n)
	}
}

func repoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(here))
}

// TestDeployManifestsUpToDate regenerates the ClusterRole (controller-gen
// rbac from rbac.go), the operator's Deployment and friends (Operator) and
// the CRD copy, and fails when the committed files under config/ differ:
// someone changed the markers, the code or the CRD without running `make
// deploy-manifests`.
func TestDeployManifestsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen; skipped with -short")
	}
	root := repoRoot()
	cg := os.Getenv("CONTROLLER_GEN")
	if cg == "" {
		m, _ := filepath.Glob(filepath.Join(root, "bin", "controller-gen-*"))
		if len(m) == 0 {
			t.Fatal("controller-gen not built: run `make controller-gen` (make test does it)")
		}
		cg = m[len(m)-1]
	}
	out := t.TempDir()
	cmd := exec.Command(cg, "rbac:roleName="+Name, "paths=./deploy/", "output:rbac:dir="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen rbac: %v\n%s", err, b)
	}
	same := func(want []byte, committed string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(root, committed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make deploy-manifests` and commit the result", committed)
		}
	}
	role, err := os.ReadFile(filepath.Join(out, "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	same(role, "deploy/config/rbac/role.yaml")
	op, err := YAML(OperatorHeader, Operator(DefaultImage, DefaultNamespace))
	if err != nil {
		t.Fatal(err)
	}
	same(op, "deploy/config/operator.yaml")
	crds, _ := filepath.Glob(filepath.Join(root, "operator", "config", "crd", "*.yaml"))
	if len(crds) == 0 {
		t.Fatal("no CRD in operator/config/crd")
	}
	for _, c := range crds {
		b, _ := os.ReadFile(c)
		same(b, filepath.Join("deploy", "config", "crd", filepath.Base(c)))
	}
}

// TestOperatorManifestsDecodeAndFit decodes config/operator.yaml strictly
// and checks that the pieces fit: the Deployment's Pods carry the labels
// its selector (and Chaos Mesh's selectors) use, run as the
// ServiceAccount the binding names, and bind the ClusterRole that
// controller-gen wrote; the role grants what the operator does.
func TestOperatorManifestsDecodeAndFit(t *testing.T) {
	b, err := os.ReadFile("config/operator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")[1:]
	if len(docs) != 4 {
		t.Fatalf("%d documents, want 4", len(docs))
	}
	ns, sa, crb, dep := &corev1.Namespace{}, &corev1.ServiceAccount{}, &rbacv1.ClusterRoleBinding{}, &appsv1.Deployment{}
	for i, into := range []any{ns, sa, crb, dep} {
		if err := yaml.UnmarshalStrict([]byte(docs[i]), into); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	role := &rbacv1.ClusterRole{}
	rb, err := os.ReadFile("config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(bytes.TrimPrefix(rb, []byte("---\n")), role); err != nil {
		t.Fatal(err)
	}
	sel, _ := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Error("the Deployment's selector does not match its Pods")
	}
	if dep.Spec.Template.Spec.ServiceAccountName != sa.Name || crb.Subjects[0].Name != sa.Name || crb.Subjects[0].Namespace != ns.Name || dep.Namespace != ns.Name {
		t.Error("ServiceAccount, binding, Deployment and Namespace do not fit together")
	}
	if crb.RoleRef.Name != role.Name {
		t.Errorf("binding refers to ClusterRole %q, controller-gen wrote %q", crb.RoleRef.Name, role.Name)
	}
	grants := func(group, resource, verb string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, g := range [][3]string{{"kv.driftlab.io", "kvclusters", "watch"}, {"kv.driftlab.io", "kvclusters/status", "patch"},
		{"", "pods", "create"}, {"", "pods", "delete"}, {"", "pods", "watch"}} {
		if !grants(g[0], g[1], g[2]) {
			t.Errorf("the ClusterRole does not grant %s on %s.%s", g[2], g[1], g[0])
		}
	}
	if grants("", "secrets", "get") {
		t.Error("the ClusterRole grants secrets: more than the operator needs")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != DefaultImage || strings.Join(c.Command[:2], " ") != "driftlab operator" {
		t.Errorf("container %s runs %v", c.Image, c.Command)
	}
	if other := Operator("registry.example/driftlab:v1", "ns2"); other[3].(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image != "registry.example/driftlab:v1" {
		t.Error("the image is not a parameter")
	}
}

// TestKindConfig checks deploy/kind.yaml: a kind v1alpha4 Cluster with a
// control-plane node and the API server on loopback.
func TestKindConfig(t *testing.T) {
	b, err := os.ReadFile("kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Name       string `json:"name"`
		Networking struct {
			APIServerAddress string `json:"apiServerAddress"`
		} `json:"networking"`
		Nodes []struct {
			Role string `json:"role"`
		} `json:"nodes"`
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != "Cluster" || cfg.APIVersion != "kind.x-k8s.io/v1alpha4" || cfg.Networking.APIServerAddress != "127.0.0.1" ||
		len(cfg.Nodes) == 0 || cfg.Nodes[0].Role != "control-plane" {
		t.Errorf("kind.yaml: %+v", cfg)
	}
}

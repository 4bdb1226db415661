package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	cm "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/local"
)

func repoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(here))
}

// controllerGen finds the pinned controller-gen: $CONTROLLER_GEN (set by
// `make test`), or bin/controller-gen-* in the repository.
func controllerGen(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CONTROLLER_GEN"); p != "" {
		return p
	}
	matches, _ := filepath.Glob(filepath.Join(repoRoot(), "bin", "controller-gen-*"))
	if len(matches) == 0 {
		t.Fatal("controller-gen not built: run `make controller-gen` (make test does it)")
	}
	return matches[len(matches)-1]
}

// chaosMeshCRDs generates Chaos Mesh's CRDs from the api module's types
// (in the module cache) into a temporary directory: the module ships no
// CRD YAML.
func chaosMeshCRDs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(controllerGen(t), "crd:allowDangerousTypes=true,maxDescLen=0",
		"paths=github.com/chaos-mesh/chaos-mesh/api/v1alpha1", "output:crd:dir="+dir)
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen on the Chaos Mesh api types: %v\n%s", err, out)
	}
	return dir
}

// standalone turns each chaos node of a Workflow into the chaos object it
// spawns (an IOChaos, NetworkChaos, ...), with the node's deadline as its
// duration, so that each chaos kind's own CRD and webhook judge it too.
func standalone(t *testing.T, wf *cm.Workflow) []k8sruntime.Object {
	t.Helper()
	var out []k8sruntime.Object
	for _, tp := range wf.Spec.Templates {
		if !cm.IsChaosTemplateType(tp.Type) {
			continue
		}
		obj, err := tp.EmbedChaos.SpawnNewObject(tp.Type)
		if err != nil {
			t.Fatal(err)
		}
		obj.SetName(wf.Name + "-" + tp.Name)
		obj.SetNamespace(wf.Namespace)
		obj.GetObjectKind().SetGroupVersionKind(cm.SchemeGroupVersion.WithKind(string(tp.Type)))
		u, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(u, *tp.Deadline, "spec", "duration"); err != nil {
			t.Fatal(err)
		}
		typed := obj.DeepCopyObject()
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u, typed); err != nil {
			t.Fatal(err)
		}
		out = append(out, typed)
	}
	return out
}

// webhookValidate runs Chaos Mesh's own admission validation (what its
// webhook would say on a real cluster) on a chaos object.
func webhookValidate(obj k8sruntime.Object) error {
	v, ok := obj.(interface {
		ValidateCreate(context.Context, k8sruntime.Object) (admission.Warnings, error)
	})
	if !ok {
		return nil
	}
	_, err := v.ValidateCreate(context.Background(), obj)
	return err
}

func create(ctx context.Context, c client.Client, obj k8sruntime.Object) error {
	m, err := Unstructured(obj)
	if err != nil {
		return err
	}
	return c.Create(ctx, &unstructured.Unstructured{Object: m})
}

// TestExportsAreAcceptedByChaosMeshCRDs installs Chaos Mesh's CRDs,
// generated from its api types, into an envtest kube-apiserver and creates
// every object exported from every built-in scenario (and each chaos node
// as a standalone object): all are accepted, and pass Chaos Mesh's webhook
// validation. A Workflow and an IOChaos with action "explode" are rejected.
func TestExportsAreAcceptedByChaosMeshCRDs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen and a control plane; skipped with -short")
	}
	if _, err := local.FindKubeAPIServer(); err != nil {
		t.Fatal(err)
	}
	crdDir := chaosMeshCRDs(t)
	ctx := context.Background()
	env, err := local.Start(ctx, local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	crds, err := envtest.InstallCRDs(env.Admin, envtest.CRDInstallOptions{Paths: []string{crdDir}, ErrorIfPathMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("installed %d Chaos Mesh CRDs", len(crds))
	c, err := client.New(env.Admin, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace}}); err != nil {
		t.Fatal(err)
	}

	kinds := map[string]int{}
	for _, name := range scenarios.BuiltinNames() {
		s, err := scenarios.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Build(s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		objs := append([]k8sruntime.Object{}, e.Objects...)
		for _, o := range e.Objects {
			if wf, ok := o.(*cm.Workflow); ok {
				objs = append(objs, standalone(t, wf)...)
			}
		}
		for _, o := range objs {
			kind := GVK(o).Kind
			if err := webhookValidate(o); err != nil {
				t.Errorf("%s: Chaos Mesh's webhook rejects the %s: %v", name, kind, err)
			}
			if err := create(ctx, c, o); err != nil {
				t.Errorf("%s: the apiserver rejects the %s: %v", name, kind, err)
				continue
			}
			kinds[kind]++
		}
	}
	t.Logf("created: %v", kinds)
	for _, k := range []string{"Workflow", "IOChaos", "NetworkChaos", "StressChaos", "Job"} {
		if kinds[k] == 0 {
			t.Errorf("no %s was exported from the built-in scenarios", k)
		}
	}

	// The negative control: the same objects with a wrong action.
	s, _ := scenarios.Builtin("wal-fsync-delay")
	e, _ := Build(s, Options{})
	wf := e.Objects[0].(*cm.Workflow).DeepCopy()
	wf.Name = "explode"
	for i := range wf.Spec.Templates {
		if wf.Spec.Templates[i].EmbedChaos != nil && wf.Spec.Templates[i].IOChaos != nil {
			wf.Spec.Templates[i].IOChaos.Action = "explode"
		}
	}
	err = create(ctx, c, wf)
	if err == nil || !strings.Contains(err.Error(), "explode") {
		t.Errorf("a Workflow with ioChaos action explode: err = %v, want a rejection naming the value", err)
	}
	io := standalone(t, e.Objects[0].(*cm.Workflow))[0].(*cm.IOChaos)
	io.Name, io.Spec.Action = "explode", "explode"
	if err := create(ctx, c, io); err == nil || !strings.Contains(err.Error(), "action") {
		t.Errorf("an IOChaos with action explode: err = %v, want a rejection of spec.action", err)
	}
}

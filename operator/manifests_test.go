package operator

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// controllerGen finds the pinned controller-gen: $CONTROLLER_GEN (set by
// `make test`), or bin/controller-gen-* in the repository.
func controllerGen(t *testing.T, root string) string {
	t.Helper()
	if p := os.Getenv("CONTROLLER_GEN"); p != "" {
		return p
	}
	matches, _ := filepath.Glob(filepath.Join(root, "bin", "controller-gen-*"))
	if len(matches) == 0 {
		t.Fatal("controller-gen not built: run `make controller-gen` (make test does it)")
	}
	return matches[len(matches)-1]
}

// TestGeneratedFilesUpToDate regenerates the deepcopy code and the CRD YAML
// into a temporary directory and fails when the committed files differ:
// someone changed the API types without running `make manifests`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen; skipped with -short")
	}
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(here))
	cg := controllerGen(t, root)
	out := t.TempDir()
	for _, args := range [][]string{
		{"object", "paths=./operator/api/...", "output:object:dir=" + filepath.Join(out, "object")},
		{"crd", "paths=./operator/api/...", "output:crd:dir=" + filepath.Join(out, "crd")},
	} {
		cmd := exec.Command(cg, args...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, b)
		}
	}
	compare := func(generated, committed string) {
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatalf("controller-gen wrote no %s: %v", filepath.Base(generated), err)
		}
		got, err := os.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make manifests` and commit the result", committed)
		}
	}
	compare(filepath.Join(out, "object", "zz_generated.deepcopy.go"), filepath.Join(root, "operator", "api", "v1alpha1", "zz_generated.deepcopy.go"))
	crds, _ := filepath.Glob(filepath.Join(out, "crd", "*.yaml"))
	if len(crds) == 0 {
		t.Fatal("controller-gen generated no CRD")
	}
	for _, g := range crds {
		compare(g, filepath.Join(root, "operator", "config", "crd", filepath.Base(g)))
	}
}

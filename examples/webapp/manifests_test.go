package webapp_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesUpToDate regenerates the deepcopy code and the CRD
// with controller-gen ($CONTROLLER_GEN, which make test sets) and fails
// when the committed files differ.
func TestGeneratedFilesUpToDate(t *testing.T) {
	cg := os.Getenv("CONTROLLER_GEN")
	if cg == "" {
		matches, _ := filepath.Glob("../../bin/controller-gen-*")
		if len(matches) == 0 {
			t.Skip("controller-gen not built: make controller-gen (make test does it)")
		}
		cg = matches[len(matches)-1]
	}
	out := t.TempDir()
	for _, args := range [][]string{
		{"object", "paths=./api/...", "output:object:dir=" + filepath.Join(out, "object")},
		{"crd", "paths=./api/...", "output:crd:dir=" + filepath.Join(out, "crd")},
	} {
		if b, err := exec.Command(cg, args...).CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, b)
		}
	}
	for gen, committed := range map[string]string{
		filepath.Join(out, "object", "zz_generated.deepcopy.go"):     "api/v1/zz_generated.deepcopy.go",
		filepath.Join(out, "crd", "webapp.example.com_webapps.yaml"): "config/crd/webapp.example.com_webapps.yaml",
	} {
		want, err := os.ReadFile(gen)
		if err != nil {
			t.Fatalf("controller-gen wrote no %s: %v", filepath.Base(gen), err)
		}
		got, _ := os.ReadFile(committed)
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make manifests (in the driftlab repository) and commit the result", committed)
		}
	}
}

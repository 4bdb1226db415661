package failpoint

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// isRewrite reports whether a file name is one that failpoint-ctl leaves
// in an enabled tree.
func isRewrite(name string) bool {
	base := filepath.Base(name)
	return strings.Contains(base, "__failpoint_stash__") || base == "binding__failpoint_binding__.go"
}

// TestNoFailpointRewriteInTree fails when a failpoint-ctl rewrite is left in
// the working tree or committed to git (an enabled tree must never be
// committed: run make failpoints-disable). The failpoint build's snapshot
// (make test-failpoints) is rewritten on purpose and skips it.
func TestNoFailpointRewriteInTree(t *testing.T) {
	if os.Getenv("DRIFTLAB_FAILPOINT_BUILD") == "1" {
		t.Skip("skipped: the failpoint build's snapshot is rewritten on purpose")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(out))
	var bad []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (rel == ".git" || rel == "bin" || rel == "build" || rel == "runs") {
			return filepath.SkipDir
		}
		if !d.IsDir() && isRewrite(p) {
			bad = append(bad, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if git, err := exec.Command("git", "-C", root, "ls-files").Output(); err == nil {
		for _, f := range strings.Split(string(git), "\n") {
			if isRewrite(f) {
				bad = append(bad, f+" (in git)")
			}
		}
	} else {
		t.Logf("no git: checked the working tree only (%v)", err)
	}
	if len(bad) > 0 {
		t.Errorf("a failpoint-enabled tree must not be committed or tested as normal; run make failpoints-disable. Found: %s", strings.Join(bad, ", "))
	}
}

func TestIsRewrite(t *testing.T) {
	for name, want := range map[string]bool{
		"operator/failpoints/failpoints.go__failpoint_stash__": true,
		"operator/failpoints/binding__failpoint_binding__.go":  true,
		"operator/failpoints/failpoints.go":                    false,
	} {
		if isRewrite(name) != want {
			t.Errorf("isRewrite(%s) = %v", name, !want)
		}
	}
}

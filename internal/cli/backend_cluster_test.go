package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterBackendBadInput: the cluster backend without a cluster, or
// with a kubeconfig that does not exist, or an unknown --operator, is bad
// input (exit 2) saying what to pass; nothing is contacted.
func TestClusterBackendBadInput(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", filepath.Join(home, "none"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--backend", "cluster", "--out", t.TempDir(), "baseline"}, "pass --kubeconfig FILE or set KUBECONFIG"},
		{[]string{"run", "--backend", "cluster", "--kubeconfig", filepath.Join(home, "missing"), "--out", t.TempDir(), "baseline"}, "--kubeconfig: stat"},
	} {
		code, _, stderr := run(c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, ExitUsage, c.want)
		}
	}
}

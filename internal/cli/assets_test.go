package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/internal/assets"
)

// TestAssetsUsesKubebuilderAssets: with every binary in KUBEBUILDER_ASSETS,
// `driftlab assets` builds nothing and prints that directory.
func TestAssetsUsesKubebuilderAssets(t *testing.T) {
	kba := t.TempDir()
	for _, n := range assets.Known {
		if err := os.WriteFile(filepath.Join(kba, n), []byte("#!/bin/sh\necho Kubernetes v1.37.2\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KUBEBUILDER_ASSETS", kba)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	code, out, stderr := run("assets")
	if code != ExitOK || strings.TrimSpace(out) != kba {
		t.Fatalf("exit %d, stdout %q (want %s), stderr %q", code, out, kba, stderr)
	}
	for _, n := range assets.Known {
		if !strings.Contains(stderr, n+" v1.37.2 from KUBEBUILDER_ASSETS") {
			t.Errorf("stderr does not report %s: %q", n, stderr)
		}
	}
	if code, _, stderr := run("assets", "kubelet"); code != ExitRunFailed || !strings.Contains(stderr, `unknown binary "kubelet"`) {
		t.Errorf("assets kubelet: exit %d, stderr %q", code, stderr)
	}
}

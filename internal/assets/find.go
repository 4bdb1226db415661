// Package assets finds and builds the Kubernetes control-plane binaries
// driftlab runs: kube-apiserver, kube-controller-manager and kube-scheduler.
//
// envtest's download site is not reachable from every machine, so Build
// compiles them from the Go module proxy (k8s.io/kubernetes at a version)
// with the go command. Find looks where a user or `make envtest-assets`
// would have put them. The package uses the standard library only, so that
// `go run ./internal/assets/cmd/envtest-assets` compiles in seconds.
package assets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultVersion is the Kubernetes version driftlab is built and tested
// against (its k8s.io modules are v0.<minor>.<patch> of it).
const DefaultVersion = "1.37.2"

// Known names the binaries Build can make, in the order they are built.
var Known = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// EnvVar is the environment variable naming one binary directly, as envtest
// reads it: TEST_ASSET_KUBE_APISERVER for kube-apiserver.
func EnvVar(name string) string {
	return "TEST_ASSET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// CacheDir is the per-user directory for version's binaries:
// os.UserCacheDir()/driftlab/k8s/<version>.
func CacheDir(version string) (string, error) {
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "driftlab", "k8s", version), nil
}

// Find returns the path of the named binary. It looks, in order, in
// $KUBEBUILDER_ASSETS, at $TEST_ASSET_<NAME>, in bin/k8s/<version>/ in the
// working directory or any parent (DefaultVersion first, then any version),
// and in the per-user cache (CacheDir). It does not check versions.
func Find(name string) (string, error) {
	var tried []string
	check := func(p string) bool {
		tried = append(tried, p)
		return isExecutable(p)
	}
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" && check(filepath.Join(d, name)) {
		return filepath.Join(d, name), nil
	}
	if p := os.Getenv(EnvVar(name)); p != "" && check(p) {
		return p, nil
	}
	dir, _ := os.Getwd()
	for dir != "" {
		if p := findIn(filepath.Join(dir, "bin", "k8s"), name, check); p != "" {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if c, err := CacheDir(DefaultVersion); err == nil {
		if p := findIn(filepath.Dir(c), name, check); p != "" {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (run `go run github.com/driftlab/driftlab/cmd/driftlab assets`, or `make envtest-assets` in a driftlab checkout, or set KUBEBUILDER_ASSETS to a directory holding it); looked in KUBEBUILDER_ASSETS, %s, bin/k8s/*/ up from the working directory and the per-user cache (%d paths)",
		name, EnvVar(name), len(tried))
}

// findIn looks for root/<DefaultVersion>/name, then root/*/name.
func findIn(root, name string, check func(string) bool) string {
	if p := filepath.Join(root, DefaultVersion, name); check(p) {
		return p
	}
	matches, _ := filepath.Glob(filepath.Join(root, "*", name))
	for _, m := range matches {
		if check(m) {
			return m
		}
	}
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

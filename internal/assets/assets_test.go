package assets

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBinary writes an executable that prints "Kubernetes <version>" for
// --version, as the real binaries do.
func fakeBinary(t *testing.T, path, version string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho Kubernetes " + version + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// isolate clears the variables Find reads and points the user cache into a
// temporary directory, then moves to an empty working directory.
func isolate(t *testing.T) (cache string) {
	t.Helper()
	t.Setenv("KUBEBUILDER_ASSETS", "")
	for _, n := range Known {
		t.Setenv(EnvVar(n), "")
	}
	cache = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Chdir(t.TempDir())
	return cache
}

func TestEnvVar(t *testing.T) {
	if got := EnvVar("kube-controller-manager"); got != "TEST_ASSET_KUBE_CONTROLLER_MANAGER" {
		t.Errorf("EnvVar = %s", got)
	}
}

// TestFindOrder checks the search order: KUBEBUILDER_ASSETS, then
// TEST_ASSET_<NAME>, then bin/k8s/*/ up from the working directory, then
// the per-user cache, which is where FindKubeAPIServer's order ends too.
func TestFindOrder(t *testing.T) {
	const name = "kube-scheduler"
	cache := isolate(t)
	if _, err := Find(name); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Find in an empty world: err %v, want not found", err)
	}

	inCache := filepath.Join(cache, "driftlab", "k8s", DefaultVersion, name)
	fakeBinary(t, inCache, "v"+DefaultVersion)
	expectFind(t, name, inCache)

	root := t.TempDir()
	other := filepath.Join(root, "bin", "k8s", "1.30.0", name)
	fakeBinary(t, other, "v1.30.0")
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	expectFind(t, name, other)
	preferred := filepath.Join(root, "bin", "k8s", DefaultVersion, name)
	fakeBinary(t, preferred, "v"+DefaultVersion)
	expectFind(t, name, preferred)

	direct := filepath.Join(t.TempDir(), "my-scheduler")
	fakeBinary(t, direct, "v1.0.0")
	t.Setenv(EnvVar(name), direct)
	expectFind(t, name, direct)

	kba := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", kba)
	expectFind(t, name, direct) // KUBEBUILDER_ASSETS without the binary is passed over
	fakeBinary(t, filepath.Join(kba, name), "v1.0.0")
	expectFind(t, name, filepath.Join(kba, name))

	// Not executable: not found there.
	if err := os.Chmod(filepath.Join(kba, name), 0o644); err != nil {
		t.Fatal(err)
	}
	expectFind(t, name, direct)
}

func expectFind(t *testing.T, name, want string) {
	t.Helper()
	got, err := Find(name)
	if err != nil {
		t.Fatalf("Find(%s): %v; want %s", name, err, want)
	}
	if got != want {
		t.Fatalf("Find(%s) = %s, want %s", name, got, want)
	}
}

func TestThrowawayModule(t *testing.T) {
	kmod := []byte(`module k8s.io/kubernetes

go 1.26.0

require (
	k8s.io/api v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/kube-scheduler => ./staging/src/k8s.io/kube-scheduler
	github.com/x/y => github.com/x/y v1.0.0
)
`)
	got, n, err := throwawayModule(kmod, "1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	want := `module driftlab.local/envtest-build

go 1.26.0

require k8s.io/kubernetes v1.37.2

replace (
	k8s.io/api => k8s.io/api v0.37.2
	k8s.io/kube-scheduler => k8s.io/kube-scheduler v0.37.2
)
`
	if n != 2 || string(got) != want {
		t.Errorf("throwawayModule: %d replacements\n%s\nwant 2\n%s", n, got, want)
	}
}

// fakeGo replaces the go command with a script that answers `mod download`,
// does nothing for `mod tidy`, and for `build -o DIR/ PKG...` writes a fake
// binary per package. Every invocation is appended to the returned log.
func fakeGo(t *testing.T) (log string) {
	t.Helper()
	d := t.TempDir()
	log = filepath.Join(d, "calls")
	kmod := filepath.Join(d, "k8s.go.mod")
	if err := os.WriteFile(kmod, []byte("module k8s.io/kubernetes\n\ngo 1.26.0\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
echo "$@" >> ` + log + `
case "$1 $2" in
"mod download") printf '{"Path":"k8s.io/kubernetes","GoMod":"` + kmod + `"}\n' ;;
"mod tidy") test -f go.mod && grep -q 'k8s.io/api => k8s.io/api v0.37.2' go.mod || exit 3 ;;
build*)
  shift
  while [ "$1" != "-o" ]; do shift; done
  out=$2; shift 2
  for p in "$@"; do printf '#!/bin/sh\necho Kubernetes v1.37.2\n' > "$out/${p##*/}"; chmod +x "$out/${p##*/}"; done ;;
esac
`
	goBin := filepath.Join(d, "go")
	if err := os.WriteFile(goBin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := goCommand
	goCommand = goBin
	t.Cleanup(func() { goCommand = old })
	return log
}

func builds(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, "build ") {
			out = append(out, l)
		}
	}
	return out
}

// TestEnsure checks what Ensure builds: only what is missing, in one go
// build, nothing when KUBEBUILDER_ASSETS holds everything, again when the
// version is wrong; and that the directory it returns holds every binary.
func TestEnsure(t *testing.T) {
	isolate(t)
	calls := fakeGo(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "k8s", DefaultVersion)

	// KUBEBUILDER_ASSETS holds kube-apiserver only: the other two are built
	// in one invocation and kube-apiserver is linked.
	kba := t.TempDir()
	fakeBinary(t, filepath.Join(kba, "kube-apiserver"), "v1.37.2")
	t.Setenv("KUBEBUILDER_ASSETS", kba)
	res, err := Ensure(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != dir {
		t.Errorf("Dir = %s, want %s", res.Dir, dir)
	}
	b := builds(t, calls)
	if len(b) != 1 || !strings.HasSuffix(b[0], "k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler") {
		t.Fatalf("go build calls %q, want one for the controller-manager and the scheduler", b)
	}
	if !strings.Contains(b[0], "-X k8s.io/component-base/version.gitVersion=v1.37.2") {
		t.Errorf("version not stamped: %s", b[0])
	}
	for _, n := range Known {
		if !isExecutable(filepath.Join(dir, n)) {
			t.Errorf("%s missing from %s", n, dir)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "kube-apiserver")); err != nil || l != filepath.Join(kba, "kube-apiserver") {
		t.Errorf("kube-apiserver link: %q, %v", l, err)
	}
	sources := map[string]string{}
	for _, b := range res.Binaries {
		sources[b.Name] = b.Source
		if b.Version != "v1.37.2" {
			t.Errorf("%s version %q", b.Name, b.Version)
		}
	}
	if sources["kube-apiserver"] != "KUBEBUILDER_ASSETS" || sources["kube-scheduler"] != "built" {
		t.Errorf("sources %v", sources)
	}

	// Again: nothing to build.
	if _, err := Ensure(ctx, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if b := builds(t, calls); len(b) != 1 {
		t.Fatalf("second Ensure built again: %q", b)
	}

	// A binary of another version is rebuilt, alone.
	fakeBinary(t, filepath.Join(dir, "kube-scheduler"), "v1.30.0")
	if _, err := Ensure(ctx, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	b = builds(t, calls)
	if len(b) != 2 || !strings.HasSuffix(b[1], " k8s.io/kubernetes/cmd/kube-scheduler") || strings.Contains(b[1], "controller-manager") {
		t.Fatalf("go build calls %q, want a second one for kube-scheduler alone", b)
	}

	// KUBEBUILDER_ASSETS holding all of them is returned as it is.
	for _, n := range Known[1:] {
		fakeBinary(t, filepath.Join(kba, n), "v1.36.0")
	}
	res, err = Ensure(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != kba || len(builds(t, calls)) != 2 {
		t.Errorf("Dir %s (want %s), builds %d (want 2)", res.Dir, kba, len(builds(t, calls)))
	}

	if _, err := Ensure(ctx, Options{Dir: dir, Names: []string{"kubelet"}}); err == nil {
		t.Error("Ensure of an unknown binary: no error")
	}
}

// TestEnsureDefaultDir: without a Dir, Ensure builds into the per-user cache,
// where Find looks last.
func TestEnsureDefaultDir(t *testing.T) {
	cache := isolate(t)
	fakeGo(t)
	res, err := Ensure(context.Background(), Options{Names: []string{"kube-scheduler"}})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, "driftlab", "k8s", DefaultVersion)
	if res.Dir != want {
		t.Errorf("Dir = %s, want %s", res.Dir, want)
	}
	expectFind(t, "kube-scheduler", filepath.Join(want, "kube-scheduler"))
}

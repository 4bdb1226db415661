package assets

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Build compiles the named binaries (default: Known) of Kubernetes version
// (such as "1.37.2") from the Go module proxy into dir, in one go build
// invocation so that they share compilation. It always builds; Ensure skips
// what is already there. The go command's output goes to standard error.
func Build(ctx context.Context, version, dir string, names ...string) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	return build(ctx, version, dir, os.Stderr, names)
}

// Options configures Ensure. The zero value of each field means its default.
type Options struct {
	// Version is the Kubernetes version; default DefaultVersion.
	Version string
	// Dir receives what is built; default CacheDir(Version).
	Dir string
	// Names are the binaries wanted; default Known.
	Names []string
	// Log receives progress lines and the go command's output; default none.
	Log io.Writer
}

// Binary is one binary Ensure found or built.
type Binary struct {
	Name string
	// Path is where it is (in Result.Dir, or where it was found).
	Path string
	// Source says where it came from: "KUBEBUILDER_ASSETS", the
	// TEST_ASSET_<NAME> variable, "built" or "already built".
	Source string
	// Version is what `Path --version` printed ("v1.37.2"), or "".
	Version string
}

// Result is what Ensure did.
type Result struct {
	// Dir holds every binary asked for: KUBEBUILDER_ASSETS when it holds
	// them all, else Options.Dir (with links to binaries found elsewhere).
	// It is the value to give KUBEBUILDER_ASSETS.
	Dir      string
	Binaries []Binary
	// BuildTime is how long the go command ran (0 when nothing was built).
	BuildTime time.Duration
}

// Ensure makes the named binaries available and returns the directory that
// holds them all. A binary in $KUBEBUILDER_ASSETS or at $TEST_ASSET_<NAME>
// is used as it is; one already in Dir is kept when `--version` prints the
// wanted version; the rest are built into Dir with one Build. Binaries
// found outside Dir are linked into it, unless KUBEBUILDER_ASSETS holds
// them all.
func Ensure(ctx context.Context, opt Options) (*Result, error) {
	if opt.Version == "" {
		opt.Version = DefaultVersion
	}
	if len(opt.Names) == 0 {
		opt.Names = Known
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	for _, n := range opt.Names {
		if !slices.Contains(Known, n) {
			return nil, fmt.Errorf("assets: unknown binary %q (known: %s)", n, strings.Join(Known, ", "))
		}
	}
	want := "v" + strings.TrimPrefix(opt.Version, "v")
	res := &Result{}
	found := map[string]Binary{}
	kba := os.Getenv("KUBEBUILDER_ASSETS")
	for _, n := range opt.Names {
		if kba != "" && isExecutable(filepath.Join(kba, n)) {
			found[n] = Binary{Name: n, Path: filepath.Join(kba, n), Source: "KUBEBUILDER_ASSETS"}
		} else if p := os.Getenv(EnvVar(n)); p != "" && isExecutable(p) {
			found[n] = Binary{Name: n, Path: p, Source: EnvVar(n)}
		}
	}
	if kba != "" && len(found) == len(opt.Names) && allFrom(found, "KUBEBUILDER_ASSETS") {
		res.Dir = kba
		for _, n := range opt.Names {
			b := found[n]
			b.Version, _ = Version(ctx, b.Path)
			fmt.Fprintf(opt.Log, "assets: %s %s from KUBEBUILDER_ASSETS (%s)\n", n, b.Version, b.Path)
			res.Binaries = append(res.Binaries, b)
		}
		return res, nil
	}

	if opt.Dir == "" {
		d, err := CacheDir(opt.Version)
		if err != nil {
			return nil, err
		}
		opt.Dir = d
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, err
	}
	res.Dir = dir
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	var missing []string
	for _, n := range opt.Names {
		if _, ok := found[n]; ok {
			continue
		}
		p := filepath.Join(dir, n)
		if !isExecutable(p) {
			missing = append(missing, n)
			continue
		}
		v, err := Version(ctx, p)
		if v != want {
			fmt.Fprintf(opt.Log, "assets: %s in %s is %q (%v), want %s: rebuilding\n", n, dir, v, err, want)
			missing = append(missing, n)
			continue
		}
		found[n] = Binary{Name: n, Path: p, Source: "already built", Version: v}
	}
	if len(missing) > 0 {
		fmt.Fprintf(opt.Log, "assets: building %s %s from the Go module proxy into %s (one time; several minutes on 2 cores)\n",
			strings.Join(missing, ", "), want, dir)
		t0 := time.Now()
		if err := build(ctx, opt.Version, dir, opt.Log, missing); err != nil {
			return nil, err
		}
		res.BuildTime = time.Since(t0)
		fmt.Fprintf(opt.Log, "assets: built %s in %s\n", strings.Join(missing, ", "), res.BuildTime.Round(time.Second))
		for _, n := range missing {
			found[n] = Binary{Name: n, Path: filepath.Join(dir, n), Source: "built"}
		}
	}
	for _, n := range opt.Names {
		b := found[n]
		if b.Version == "" {
			b.Version, _ = Version(ctx, b.Path)
		}
		if filepath.Dir(b.Path) != dir {
			if err := linkInto(dir, b, want); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(opt.Log, "assets: %s %s: %s (%s)\n", n, b.Version, b.Source, b.Path)
		res.Binaries = append(res.Binaries, b)
	}
	return res, nil
}

func allFrom(found map[string]Binary, source string) bool {
	for _, b := range found {
		if b.Source != source {
			return false
		}
	}
	return true
}

// linkInto makes dir/<name> a symbolic link to b.Path, so that dir holds
// every binary. A built file of the wanted version already there is kept:
// it is the same program.
func linkInto(dir string, b Binary, want string) error {
	dst := filepath.Join(dir, b.Name)
	if st, err := os.Lstat(dst); err == nil && st.Mode().IsRegular() {
		if v, _ := Version(context.Background(), dst); v == want && b.Version == want {
			return nil
		}
	}
	abs, err := filepath.Abs(b.Path)
	if err != nil {
		return err
	}
	tmp := dst + ".link"
	_ = os.Remove(tmp)
	if err := os.Symlink(abs, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

var versionRE = regexp.MustCompile(`\bv\d+\.\d+\.\d+\S*`)

// Version runs `path --version` and returns the version it prints
// ("Kubernetes v1.37.2" gives "v1.37.2").
func Version(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	v := versionRE.FindString(string(out))
	if v == "" {
		return "", fmt.Errorf("%s --version printed no version: %q", path, bytes.TrimSpace(out))
	}
	return v, nil
}

// lockDir creates dir and holds an exclusive lock on dir/.lock until the
// returned function is called, so that two builds into one directory do
// not run at once.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// goCommand is the go command Build runs; tests replace it.
var goCommand = "go"

func build(ctx context.Context, version, dir string, log io.Writer, names []string) error {
	if len(names) == 0 {
		names = Known
	}
	for _, n := range names {
		if !slices.Contains(Known, n) {
			return fmt.Errorf("assets: unknown binary %q (known: %s)", n, strings.Join(Known, ", "))
		}
	}
	version = strings.TrimPrefix(version, "v")
	parts := strings.Split(version, ".")
	if len(parts) != 3 {
		return fmt.Errorf("assets: version %q is not major.minor.patch", version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	run := func(stdout io.Writer, args ...string) error {
		cmd := exec.CommandContext(ctx, goCommand, args...)
		cmd.Dir = work
		cmd.Env = env
		cmd.Stdout = stdout
		cmd.Stderr = log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("assets: go %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}

	var dl bytes.Buffer
	if err := run(&dl, "mod", "download", "-json", "k8s.io/kubernetes@v"+version); err != nil {
		return err
	}
	var info struct{ GoMod, Error string }
	if err := json.Unmarshal(dl.Bytes(), &info); err != nil {
		return fmt.Errorf("assets: go mod download: %w", err)
	}
	if info.Error != "" || info.GoMod == "" {
		return fmt.Errorf("assets: go mod download k8s.io/kubernetes@v%s: %s", version, info.Error)
	}
	kmod, err := os.ReadFile(info.GoMod)
	if err != nil {
		return err
	}
	gomod, n, err := throwawayModule(kmod, version)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "assets: throwaway module with %d staging replacements in %s\n", n, work)
	var tools strings.Builder
	tools.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	var pkgs []string
	for _, n := range names {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+n)
		fmt.Fprintf(&tools, "\t_ %q\n", "k8s.io/kubernetes/cmd/"+n)
	}
	tools.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(work, "go.mod"), gomod, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "tools.go"), []byte(tools.String()), 0o644); err != nil {
		return err
	}
	if err := run(log, "mod", "tidy"); err != nil {
		return err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	ldflags := fmt.Sprintf("-s -w -X k8s.io/component-base/version.gitVersion=v%s -X k8s.io/component-base/version.gitMajor=%s -X k8s.io/component-base/version.gitMinor=%s",
		version, parts[0], parts[1])
	args := append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", out + string(filepath.Separator)}, pkgs...)
	if err := run(log, args...); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(out, n), filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v"+version+"\n"), 0o644)
}

var (
	goDirectiveRE = regexp.MustCompile(`(?m)^go\s+([0-9.]+)\s*$`)
	stagingRE     = regexp.MustCompile(`^\s*(k8s\.io/[A-Za-z0-9._-]+)\s+=>\s+\./staging/`)
)

// throwawayModule writes the go.mod of a module that requires
// k8s.io/kubernetes v<version>, with k8s.io/kubernetes's own staging
// replacements (k8s.io/<name> => ./staging/src/k8s.io/<name>) turned into
// the published k8s.io/<name> v0.<minor>.<patch>. It returns the file and
// the number of replacements.
func throwawayModule(kmod []byte, version string) ([]byte, int, error) {
	m := goDirectiveRE.FindSubmatch(kmod)
	if m == nil {
		return nil, 0, errors.New("assets: k8s.io/kubernetes go.mod has no go directive")
	}
	staging := "v0." + version[strings.Index(version, ".")+1:]
	var b bytes.Buffer
	fmt.Fprintf(&b, "module driftlab.local/envtest-build\n\ngo %s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n", m[1], version)
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(kmod))
	for sc.Scan() {
		if s := stagingRE.FindStringSubmatch(sc.Text()); s != nil {
			fmt.Fprintf(&b, "\t%s => %s %s\n", s[1], s[1], staging)
			n++
		}
	}
	b.WriteString(")\n")
	if n == 0 {
		return nil, 0, errors.New("assets: k8s.io/kubernetes go.mod has no staging replacements")
	}
	return b.Bytes(), n, nil
}

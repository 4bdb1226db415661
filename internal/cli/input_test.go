package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlagValuesExitTwo: flag values that used to be read as something
// else (1/2xyz as 1/2, -5 workers as all cores, --max-runs 0 as 500) are
// refused as usage errors, before anything runs.
func TestBadFlagValuesExitTwo(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "--backend", "virtual", "--seeds", "2", "--shard", "1/2xyz", "baseline"}, `--shard "1/2xyz"`},
		{[]string{"sweep", "--backend", "virtual", "--seeds", "2", "--shard", "1/2/3", "baseline"}, `--shard "1/2/3"`},
		{[]string{"sweep", "--backend", "virtual", "--seeds", "2", "--shard", "+1/2", "baseline"}, `--shard "+1/2"`},
		{[]string{"sweep", "--backend", "virtual", "--seeds", "2", "--workers", "-5", "baseline"}, "--workers -5"},
		{[]string{"matrix", "--seeds", "1", "--workers", "-5"}, "--workers -5"},
		{[]string{"shrink", "--max-runs", "0", "baseline"}, "--max-runs 0"},
		{[]string{"operator", "--workers", "0"}, "--workers 0"},
	} {
		code, _, stderr := run(c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %s", c.args, code, stderr, ExitUsage, c.want)
		}
	}
}

// TestOutRefusesADirectoryThatIsNotABundle: --out into a directory with
// someone's files exits 2 and leaves them as they were; an empty one and
// a bundle are used.
func TestOutRefusesADirectoryThatIsNotABundle(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "history.jsonl")
	if err := os.WriteFile(mine, []byte("my notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("run", "--backend", "virtual", "--no-report", "--quiet", "--out", dir, "baseline")
	if code != ExitUsage || !strings.Contains(stderr, "holds no driftlab bundle") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(mine); string(b) != "my notes\n" {
		t.Fatalf("the user's file was changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files were added to the refused directory: %v", entries)
	}
	// A bundle (the directory of an earlier run) is reused.
	bundleDir := filepath.Join(t.TempDir(), "run")
	for range 2 {
		if code, _, stderr := run("run", "--backend", "virtual", "--no-report", "--quiet", "--out", bundleDir, "baseline"); code != ExitOK {
			t.Fatalf("run into %s: exit %d, stderr %q", bundleDir, code, stderr)
		}
	}
}

// TestUnusableOutExitsTwo: an --out that cannot be made (under a regular
// file) and a scenario name too long for the default run directory are
// input errors (exit 2); the name's error names file, line and field.
func TestUnusableOutExitsTwo(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("run", "--backend", "virtual", "--no-report", "--out", filepath.Join(file, "run"), "baseline")
	if code != ExitUsage || !strings.Contains(stderr, "--out "+filepath.Join(file, "run")) {
		t.Fatalf("--out under a file: exit %d, stderr %q", code, stderr)
	}

	dir := t.TempDir()
	long := strings.Repeat("a", 250)
	p := filepath.Join(dir, "long.yaml")
	if err := os.WriteFile(p, []byte("# a scenario\nname: "+long+"\nbackend: virtual\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil { // the default --out is relative: runs/<name>-<time>
		t.Fatal(err)
	}
	defer os.Chdir(cwd)
	code, _, stderr = run("run", "--no-report", p)
	if code != ExitUsage || !strings.Contains(stderr, p+":2: name: 250 characters: at most 63") {
		t.Fatalf("long name: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = run("run", "--no-report", "--out", filepath.Join(dir, strings.Repeat("b", 300)), "baseline")
	if code != ExitUsage || !strings.Contains(stderr, "more than the 255") {
		t.Fatalf("long --out: exit %d, stderr %q", code, stderr)
	}
}

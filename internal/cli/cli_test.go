package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadScenarioExitsTwoNamingFileLineField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("name: bad\nworkload:\n  clusters: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("run", "--out", t.TempDir(), p)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	if want := p + ":3: workload.clusters: want an integer"; !strings.Contains(stderr, want) {
		t.Fatalf("stderr %q does not contain %q", stderr, want)
	}
}

func TestMissingScenarioFile(t *testing.T) {
	code, _, stderr := run("run", "no/such/file.yaml")
	if code != ExitUsage || !strings.Contains(stderr, "no/such/file.yaml") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestUnavailableBackend(t *testing.T) {
	code, _, stderr := run("run", "--backend", "cluster", "baseline")
	if code != ExitUsage || !strings.Contains(stderr, `backend "cluster"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestScenariosListsBuiltins(t *testing.T) {
	code, out, _ := run("scenarios")
	if code != 0 || !strings.Contains(out, "baseline") {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

func TestOperatorHelpListsBugsAndCaches(t *testing.T) {
	code, out, _ := run("operator", "--help")
	if code != 0 || !strings.Contains(out, "freeze-status") || !strings.Contains(out, "Cache variants: map") {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

func TestUnknownFlag(t *testing.T) {
	if code, _, _ := run("run", "--nope", "baseline"); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
}

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/sim/report"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadScenarioExitsTwoNamingFileLineField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("name: bad\nworkload:\n  objects: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("run", "--out", t.TempDir(), p)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	if want := p + ":3: workload.objects: want an integer"; !strings.Contains(stderr, want) {
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
	code, _, stderr := run("run", "--backend", "kind", "baseline")
	if code != ExitUsage || !strings.Contains(stderr, `backend "kind"`) {
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
	if code != 0 {
		t.Fatalf("exit %d, out %q", code, out)
	}
	for _, want := range append(bugs.Names(), statecache.Variants()...) {
		if !strings.Contains(out, "\n  "+want+" ") {
			t.Errorf("operator --help does not list %q:\n%s", want, out)
		}
	}
}

func TestUnknownFlag(t *testing.T) {
	if code, _, _ := run("run", "--nope", "baseline"); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
}

// The virtual backend through the CLI: the baseline passes, the same seed
// gives the same trace hash, and a broken operator exits 1.
func TestRunVirtual(t *testing.T) {
	hash := func(dir string) string {
		s, err := report.ReadSummary(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		return s.TraceHash
	}
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if code, out, stderr := run("run", "--backend", "virtual", "--out", d, "baseline"); code != ExitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
		}
	}
	if ha, hb := hash(a), hash(b); ha == "" || ha != hb {
		t.Fatalf("trace hashes %q and %q", ha, hb)
	}
	c := t.TempDir()
	if code, _, _ := run("run", "--backend", "virtual", "--seed", "2", "--out", c, "baseline"); code != ExitOK || hash(c) == hash(a) {
		t.Fatalf("seed 2: exit %d, hash %q (seed 1: %q)", code, hash(c), hash(a))
	}
	p := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(p, []byte("name: broken\nbackend: virtual\noperator: {bugs: [freeze-status]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("run", "--out", t.TempDir(), p); code != ExitFailed || !strings.Contains(out, "drift-convergence  FAIL") {
		t.Fatalf("broken operator on the virtual backend: exit %d\n%s", code, out)
	}
}

package failpoint

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	// Links etcd's server (as the harness does), so that a failpoint build
	// registers its gofail failpoints in this test binary.
	_ "go.etcd.io/etcd/server/v3/embed"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// TestCatalogueMatchesEtcdSource reads etcd's server module from the module
// cache and checks that the catalogue holds exactly its gofail failpoints,
// each in the file and with the type the source declares.
func TestCatalogueMatchesEtcdSource(t *testing.T) {
	// The module cache's copy, not the failpoint build's rewritten one.
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.etcd.io/etcd/server/v3")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m go.etcd.io/etcd/server/v3: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("etcd's server module is not in the module cache (go mod download)")
	}
	re := regexp.MustCompile(`// gofail: var (\w+) (\S+)`)
	found := map[string]Info{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = Info{Name: m[1], File: filepath.ToSlash(rel), Type: m[2]}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 40 {
		t.Fatalf("found only %d gofail markers in %s", len(found), dir)
	}
	for name, src := range found {
		fp, ok := Lookup(name)
		if !ok {
			t.Errorf("etcd failpoint %s (%s) is missing from the catalogue", name, src.File)
			continue
		}
		if fp.System != SystemEtcd || fp.File != src.File || fp.Type != src.Type {
			t.Errorf("catalogue has %s as %s %s %s; the source says %s %s", name, fp.System, fp.File, fp.Type, src.File, src.Type)
		}
	}
	for _, fp := range Catalogue() {
		if _, ok := found[fp.Name]; fp.System == SystemEtcd && !ok {
			t.Errorf("catalogue lists %s, which etcd's source does not have", fp.Name)
		}
	}
	for _, n := range []string{"walBeforeSync", "raftBeforeSave", "beforeSendWatchResponse"} {
		if _, ok := found[n]; !ok {
			t.Errorf("etcd's source has no %s", n)
		}
	}
}

func TestCatalogueHasOperatorFailpoints(t *testing.T) {
	for _, n := range failpoints.Names() {
		fp, ok := Lookup(n)
		if !ok || fp.System != SystemOperator || fp.What == "" {
			t.Errorf("operator failpoint %s: %+v, %v", n, fp, ok)
		}
	}
	names := Names()
	if len(names) != len(etcdFailpoints)+len(failpoints.Names()) {
		t.Errorf("Names has %d entries", len(names))
	}
	if !sort.StringsAreSorted(names[len(failpoints.Names()):]) {
		t.Errorf("etcd names not sorted: %v", names)
	}
}

func TestParseTerms(t *testing.T) {
	wal, _ := Lookup("walBeforeSync")
	str, _ := Lookup("defragdbFail")
	good := []struct {
		fp    Info
		term  string
		sleep time.Duration
		steps int
	}{
		{wal, "sleep(200)", 200 * time.Millisecond, 1},
		{wal, `sleep("1.5s")`, 1500 * time.Millisecond, 1},
		{wal, "off", 0, 1},
		{wal, "return", 0, 1},
		{wal, "return()", 0, 1},
		{wal, "3*sleep(100)->off", 0, 2},
		{str, `return("boom")`, 0, 1},
	}
	for _, g := range good {
		terms, err := ParseTerms(g.fp, g.term)
		if err != nil {
			t.Errorf("%s=%s: %v", g.fp.Name, g.term, err)
			continue
		}
		if len(terms) != g.steps || SleepOf(terms) != g.sleep {
			t.Errorf("%s: %d steps, sleep %s; want %d, %s", g.term, len(terms), SleepOf(terms), g.steps, g.sleep)
		}
	}
	bad := []struct {
		fp         Info
		term, want string
	}{
		{wal, "", "empty term"},
		{wal, "sleep", "sleep needs a duration"},
		{wal, "sleep(abc)", "want milliseconds"},
		{wal, `sleep("2x")`, "invalid duration"},
		{wal, "sleep(200", "unbalanced"},
		{wal, "50%sleep(200)", "probability modifiers"},
		{wal, "panic", "not allowed"},
		{wal, "break", "not allowed"},
		{wal, "print", "not allowed"},
		{wal, "explode(1)", `unknown action "explode"`},
		{wal, "return(1)", "takes no value"},
		{str, "return(1)", "string failpoint"},
		{wal, "sleep(200)->", "unknown action"},
		{wal, "0*sleep(1)", "positive"},
		{wal, "sleep(120000)", "longer than a minute"},
	}
	for _, b := range bad {
		_, err := ParseTerms(b.fp, b.term)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s=%q: error %v, want one containing %q", b.fp.Name, b.term, err, b.want)
		}
	}
}

// TestAvailabilityMatchesBuild: in a normal build neither failpoint system
// is available and the reasons say how to get a build that has them; in the
// failpoint build (make test-failpoints sets DRIFTLAB_FAILPOINT_BUILD=1)
// both are, and every catalogued etcd failpoint is compiled in.
func TestAvailabilityMatchesBuild(t *testing.T) {
	wal, _ := Lookup("walBeforeSync")
	op, _ := Lookup(failpoints.NameBeforeStatusWrite)
	if os.Getenv("DRIFTLAB_FAILPOINT_BUILD") == "1" {
		if err := Available(wal); err != nil {
			t.Errorf("failpoint build: %v", err)
		}
		if err := Available(op); err != nil {
			t.Errorf("failpoint build: %v", err)
		}
		compiled := map[string]bool{}
		for _, n := range EtcdFailpoints() {
			compiled[n] = true
		}
		for _, fp := range etcdFailpoints {
			if !compiled[fp.Name] {
				t.Errorf("%s is catalogued but not compiled into the failpoint build", fp.Name)
			}
		}
		return
	}
	if err := Available(wal); err == nil || !strings.Contains(err.Error(), "make test-failpoints") {
		t.Errorf("normal build, etcd failpoint: %v", err)
	}
	if err := Available(op); err == nil || !strings.Contains(err.Error(), "make test-failpoints") {
		t.Errorf("normal build, operator failpoint: %v", err)
	}
	if err := EnableEtcd("walBeforeSync", "sleep(1)"); err == nil {
		t.Error("enabling an etcd failpoint in a normal build succeeded")
	}
	if err := failpoints.Enable(failpoints.NameBeforeStatusWrite, "sleep(1)"); err == nil {
		t.Error("enabling an operator failpoint in a normal build succeeded")
	}
}

// TestOperatorFailpointSleeps: in the failpoint build, an enabled operator
// failpoint really sleeps at its marker and counts its hits; disabled, it
// does not.
func TestOperatorFailpointSleeps(t *testing.T) {
	if !failpoints.Rewritten() {
		t.Skip("skipped: " + ReasonNoOperatorRewrite)
	}
	n := failpoints.NameBeforeStatusWrite
	// The marker's own cost: the median of five calls (one call can meet
	// a scheduling hiccup of a loaded machine).
	marker := func() time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			failpoints.BeforeStatusWrite()
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[2]
	}
	base := marker()
	if err := failpoints.Enable(n, "sleep(50)"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	failpoints.BeforeStatusWrite()
	failpoints.BeforeStatusWrite()
	slept := time.Since(start)
	hits, err := failpoints.Disable(n)
	if err != nil {
		t.Fatal(err)
	}
	after := marker()
	t.Logf("marker: %s before, %s for two calls enabled, %s after; hits %d", base, slept, after, hits)
	if slept < 100*time.Millisecond || hits != 2 {
		t.Errorf("enabled sleep(50): two calls took %s with %d hits", slept, hits)
	}
	// Against this run's own timings, not a number: disabled, the marker
	// costs what it did before, far from half of one enabled sleep.
	if after-base >= slept/4 {
		t.Errorf("disabled failpoint still slows the marker: %s, %s before; enabled calls took %s each", after, base, slept/2)
	}
}

// TestEtcdFailpointSwitch: in the failpoint build, an etcd failpoint can be
// switched on and off in-process and reports its hit count.
func TestEtcdFailpointSwitch(t *testing.T) {
	if len(EtcdFailpoints()) == 0 {
		t.Skip("skipped: " + ReasonNoEtcdFailpoints)
	}
	if err := EnableEtcd("walBeforeSync", "sleep(1)"); err != nil {
		t.Fatal(err)
	}
	n, err := DisableEtcd("walBeforeSync")
	if err != nil || n != 0 {
		t.Fatalf("disable: %d hits, %v (no etcd ran, so no hits)", n, err)
	}
	if err := EnableEtcd("noSuchFailpoint", "sleep(1)"); err == nil {
		t.Error("enabling an unknown etcd failpoint succeeded")
	}
}

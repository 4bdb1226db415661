package backend

import (
	"os/exec"
	"strings"
	"testing"
)

// nameTables are the reference operator's packages the scenario format
// validates its operator section against (seeded bug names, cache variants,
// failpoint names): tables of names, no operator code.
var nameTables = map[string]bool{
	"github.com/driftlab/driftlab/operator/bugs":       true,
	"github.com/driftlab/driftlab/operator/statecache": true,
	"github.com/driftlab/driftlab/operator/failpoints": true,
}

// No package of sim/ builds on the reference operator: the CLI and tests
// wire it in (as the virtual backend's model, as a lab System) like any
// user's operator.
func TestSimDoesNotImportTheReferenceOperator(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "github.com/driftlab/driftlab/sim/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list named %d packages under sim/, want the whole tree:\n%s", len(lines), out)
	}
	for _, l := range lines {
		pkg, deps, _ := strings.Cut(l, " ")
		for _, d := range strings.Fields(deps) {
			if (d == "github.com/driftlab/driftlab/operator" || strings.HasPrefix(d, "github.com/driftlab/driftlab/operator/")) && !nameTables[d] {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}

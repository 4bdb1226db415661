package tests

import (
	"os"
	"testing"

	"github.com/driftlab/driftlab/internal/cli"
)

// TestMain lets this test binary act as `driftlab operator ...` when the
// harness re-executes it (it sets DRIFTLAB_OPERATOR_CHILD=1).
func TestMain(m *testing.M) {
	if os.Getenv("DRIFTLAB_OPERATOR_CHILD") == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

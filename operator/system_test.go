package operator

import (
	"context"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
)

// operator.env reaches the reference operator's process, and the
// in-process operator, which cannot have an environment of its own, says so
// rather than running without it.
func TestSystemPassesTheScenarioEnv(t *testing.T) {
	s, err := scenarios.Parse("env.yaml", []byte("name: x\noperator:\n  env: {HTTP2_READ_IDLE_TIMEOUT_SECONDS: \"1\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := System(s, "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	cmd, ok := sys.Operator.(*harness.Command)
	if !ok || cmd.Env["HTTP2_READ_IDLE_TIMEOUT_SECONDS"] != "1" {
		t.Fatalf("operator %T, env %v", sys.Operator, cmd.Env)
	}
	_, err = InProcess(s).Start(context.Background(), harness.OperatorEnv{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "operator.env") {
		t.Fatalf("in-process operator with an env: %v", err)
	}
}

package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the subcommands; each command's file adds
// its own in an init function, so adding a command touches no shared file.
var commands []func() *cobra.Command

// Exit codes.
const (
	ExitOK        = 0 // the run passed
	ExitFailed    = 1 // an invariant failed
	ExitUsage     = 2 // bad command line or scenario
	ExitRunFailed = 3 // the run itself could not complete
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the CLI with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != ExitFailed {
			fmt.Fprintln(stderr, "driftlab:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "driftlab:", err)
	return ExitUsage
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "driftlab",
		Short: "Deterministic simulation and chaos testbed for Kubernetes operators",
		Long: `driftlab runs a Kubernetes operator (yours, declared in a scenario's subject and
operator sections, or the built-in reference operator) against a real control plane
(embedded etcd + envtest kube-apiserver), a deterministic simulation or a cluster,
under a scenario's workload and faults, and checks state-drift and latency invariants.
See docs/cli.md and docs/tutorial.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

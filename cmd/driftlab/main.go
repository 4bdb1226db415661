// Command driftlab is the driftlab CLI: run scenarios against a reference
// Kubernetes operator and check state-drift and latency invariants. See
// README.md and `driftlab --help`.
package main

import (
	"os"

	"github.com/driftlab/driftlab/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}

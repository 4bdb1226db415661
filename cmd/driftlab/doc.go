// Command driftlab is the driftlab CLI: run scenarios against a reference
// Kubernetes operator and check state-drift and latency invariants. See
// README.md and `driftlab --help`.
package main

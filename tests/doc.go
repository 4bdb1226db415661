// Package tests is driftlab's end-to-end suite: `go test ./tests/...` runs
// scenarios on the local backend (embedded etcd, envtest kube-apiserver, the
// reference operator in its own process) and asserts what users rely on:
// the baseline passes, and a deliberately broken operator makes the drift
// invariant fail.
//
// The test binary stands in for the driftlab binary: when the harness
// re-executes it to run the operator, TestMain hands over to the CLI.
package tests

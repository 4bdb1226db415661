// Package cli is the driftlab command line (cobra). cmd/driftlab calls
// Main; tests call it too, so that a test binary can stand in for the
// driftlab binary when the harness re-executes itself to run the operator.
package cli

// Package backend is the seam between driftlab's seed tools (sim/sweep,
// sim/shrink) and a deterministic backend that runs one scenario and seed.
//
// The tools never name a backend: the CLI and tests pass one in (today
// operator/virtual.Verdict, the reference operator's model), so that the
// virtual backend for any operator plugs in where that one does, and sim/
// stays free of the reference operator.
package backend

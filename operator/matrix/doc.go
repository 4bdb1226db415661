// Package matrix is driftlab's detection matrix: a mutation score for the
// testbed itself. It runs every seeded bug of the reference operator
// (operator/bugs) against a catalogue of scenarios, over increasing seeds
// until a judged invariant fails, and reports for each bug and scenario
// "caught after k seeds (invariant)" or "not caught". It also runs the
// correct operator with every member-cache variant (operator/statecache)
// on every scenario and counts the seeds with a violation, which must be
// zero: a testbed that raises false alarms is as useless as one that
// misses bugs.
//
// Judged invariants. A run is judged on the operator invariants
// drift-convergence, drift-staleness and latency, minus those its scenario
// is expected to fail for every operator (ExpectedFailures: the incident
// reproduction fails its latency SLO by design). The summary's "faults"
// check is never judged: it says whether the harness could inject the
// scenario's faults, not whether the operator was right. The same rule
// applies to the seeded bugs and to the clean operator, so a bug counts as
// caught only by an invariant the clean operator is held to.
//
// Backends. On the virtual backend every run is deterministic, so "caught
// after k seeds" is a reproducible number; cells run in parallel on all
// cores. On the local backend runs are real (about 30 s each) and run one
// at a time; bugs that need real timing (lock-across-io) are caught there.
package matrix

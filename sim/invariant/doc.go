// Package invariant checks a run's history against driftlab's invariants.
//
// Every check is a pure function of the history (package history) and the
// scenario's thresholds, so a recorded history can be checked again offline
// and every backend is judged by the same code. The checks:
//
//   - drift-convergence: after the workload stops, within convergeWithin,
//     every KVCluster's status equals the truth (readyReplicas = member Pods
//     that are Ready, observedGeneration = generation, Ready condition right)
//     and stays so to the end of the run;
//   - drift-staleness: no status write claims a readyReplicas that was not
//     the true count at some moment within the staleness bound before it;
//   - latency: for every Pod that became Ready, the time until a status write
//     reflects it, in an HdrHistogram, against the scenario's SLO.
//
// Beside them, every Outcome measures drift (DriftStats): how long the
// clusters' statuses disagreed with the truth, over the workload, inside
// each fault window and outside every window. It has no limit; it is how a
// fault is shown to act on the status, dense where Ready samples are few.
//
// Check takes a whole history; Checker is the same check one record at a
// time, for a history still being made (the virtual backend checks a run
// while it goes on).
//
// Truth is the live model of the world the checks replay; the harness feeds
// it the same records as they happen to know when a run has converged.
package invariant

// Package invariant checks a run's history against driftlab's invariants.
//
// Every check is a pure function of the history (package history) and the
// scenario's thresholds, so a recorded history can be checked again offline
// and every backend is judged by the same code. The history says what the
// run tests (its subject record: the properties and how each is judged);
// its truth and reported records give, for every object of the subject
// kind, each property's truth and reported value over time. The checks:
//
//   - drift-convergence: after the workload stops, within convergeWithin,
//     every object's reported values equal their truths (for the reference
//     operator: readyReplicas = Ready member Pods, observedGeneration =
//     generation, the Ready condition right) and stay so to the end;
//   - drift-staleness: no reported value was never the truth within the
//     staleness bound before it was reported;
//   - latency: for every truth change (every change, or increases, as the
//     property says), the time until a reported value reflects it, in an
//     HdrHistogram, against the scenario's SLO.
//
// Beside them, every Outcome measures drift (DriftStats): how long the
// objects' reported values disagreed with the truth, over the workload,
// inside each fault window and outside every window. It has no limit; it
// is how a fault is shown to act, dense where latency samples are few.
//
// Check takes a whole history; Checker is the same check one record at a
// time, for a history still being made (the virtual backend checks a run
// while it goes on).
//
// Truth is the live model of the world the checks replay; the harness feeds
// it the same records as they happen to know when a run has converged.
package invariant

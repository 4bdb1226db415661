// Package history records what happened during a run, one Record per line of
// history.jsonl, written as it happens.
//
// Records come from four sources: the workload (operations applied), the
// truth (what committed to etcd: Pods becoming Ready, status writes, specs,
// read straight from the embedded etcd so faults on the API paths cannot
// distort them), the operator (events it saw, reconciles, status writes it
// made) and the harness (phase markers). Every record carries T, the time
// since the run started, on one clock. The invariants are pure functions of
// a history, so a recorded history can be checked again offline.
package history

// Package controller is the reference operator's reconciler: it keeps the
// member Pods of every KVCluster in line with spec.replicas and reports how
// many are Ready in status, through Status().Patch() under its own field
// owner.
//
// The reconciler refreshes its member state cache (package statecache) from
// the informer's Pods and computes the status from that cache; the Pod event
// handler feeds the cache too. Every event it sees, every reconcile and
// every status write is streamed to the harness as a history record.
// Seeded bugs (package bugs) change this behaviour on purpose.
package controller

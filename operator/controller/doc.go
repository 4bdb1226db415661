// Package controller is the reference operator's reconciler: it keeps the
// member Pods of every KVCluster in line with spec.replicas and reports how
// many are Ready in status, through Status().Patch() (merge patch with
// optimistic lock) under its own field owner.
//
// The Pod event handler (Reconciler.OnPodEvent) feeds the member state
// cache (package statecache): adds and updates revision-checked, deletes
// and "delete-unknown" tombstones (a delete learnt on relist) removing the
// member. The reconciler computes the status from that cache, so a cache
// that drifts shows as a status that drifts. It uses the informer's
// listing to create and delete members, and never decides from a copy of
// the KVCluster older than one it has already seen (a watch event or its
// own status write). Every event it sees, every reconcile and every status
// write is streamed to the harness as a history record. Seeded bugs
// (package bugs) change this behaviour on purpose; the virtual backend
// drives the same code through OnPodEvent, OnClusterEvent and Reconcile.
package controller

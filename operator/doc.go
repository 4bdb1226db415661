// Package operator is driftlab's reference operator: a controller-runtime
// manager running the KVCluster controller (package controller) with a
// member state cache (package statecache) and, when asked, seeded bugs
// (package bugs).
//
// The harness runs it in its own process, as it would run in a cluster, by
// re-executing the driftlab binary as "driftlab operator --kubeconfig ...",
// so that runtime faults (GC pressure, crash and restart) hit the operator
// alone. Run is that entry point; it streams history records to the harness
// as JSON lines.
package operator

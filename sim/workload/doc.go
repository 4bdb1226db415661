// Package workload turns a scenario's workload section and a seed into a
// fixed, readable list of operations (create, scale, annotate, delete
// KVClusters at given times), and applies such a list to a cluster through
// the API server.
//
// Generation is deterministic: the same workload and seed give the same
// operations, whatever the backend, so a run can be replayed operation by
// operation.
package workload

// Package workload turns a scenario's workload section and a seed into a
// fixed, readable list of operations (create, scale, annotate, patch,
// delete objects of the subject kind — or of another kind — at given
// times), and applies such a list to a cluster through the API server, as
// unstructured objects built from the subject's template.
//
// A workload may instead list its operations explicitly
// (workload.operations, e.g. imported from an audit log by
// `driftlab import audit`); Generate then returns exactly those.
//
// Generation is deterministic: the same workload and seed give the same
// operations, whatever the backend, so a run can be replayed operation by
// operation. Stream is driftlab's one seed-derivation function.
package workload

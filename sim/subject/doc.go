// Package subject is what driftlab knows about the operator under test:
// the declaration of its custom resource (Spec: kind, CRDs, the template
// the workload creates, and properties — a value the operator reports and
// the truth it must equal), compiled field paths and CEL truths, and the
// Tracker that turns committed changes into truth and reported records,
// the same on every backend.
//
// A property's truth is computed from the committed state of the cluster
// at each commit (a field of the object, the count of its Ready Pods
// through owner references or a label selector, a field of a related
// object, a CEL expression, or a Go function); its reported value is a
// field path into the object. The invariants (sim/invariant) compare the
// two over time: drift while they differ, latency from the commit that
// changed a truth to the commit that reflects it.
package subject

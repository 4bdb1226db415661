// Package faults is driftlab's fault catalogue: one Fault interface and one
// table of fault types (Table), each a parameterised value declared in a
// scenario (scenarios.Fault) and built for a backend.
//
// On the local backend a fault is built against a Plan before the control
// plane starts, so that it can claim what it needs there (a FUSE mount for
// etcd's WAL directory, a TCP proxy on a link, an etcd stream cap); the
// backend then starts and stops it at its window. A fault that the backend
// cannot run (no FUSE, say) is reported as skipped with the reason, never as
// passed. Removing a fault restores the system fully.
//
// The mechanisms live in sub-packages: fsyncfs (FUSE passthrough with fsync
// delay), netproxy (toxiproxy with a TCP-retransmission toxic), watchstorm
// (etcd watcher churn and slow consumers) and gcpressure (map growth inside
// the operator's process).
package faults

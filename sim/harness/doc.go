// Package harness is the one run core of the real backends (local,
// cluster): it records the history, feeds committed changes to the truth
// tracker, runs the simulated kubelet, starts the operator under test and
// waits until it is ready, schedules the fault windows, applies the
// workload, waits for convergence, tears everything down in reverse order
// and judges the run. A Backend says only what differs: how the control
// plane comes up, where the truth comes from, which faults it can inject.
//
// The operator under test is a System: its subject (sim/subject), its
// CRDs, and how to run it — a Command (any process, started with the
// run's kubeconfig, ready when its /readyz answers, a log line matches,
// or at once), a Setup (a controller-runtime setup function run in this
// process), or nothing (it already runs against the cluster). Nothing of
// driftlab's is added to an operator's arguments. The reference operator
// is one System among others (operator.System); only an operator that
// takes driftlab's harness commands gets the faults that act inside its
// process.
package harness

// Package cluster is the "cluster" backend: a scenario's workload, history
// and invariants against any Kubernetes API server reached by a kubeconfig
// (a kind cluster with Chaos Mesh in `make chaos`, or any existing
// cluster), with no access to its etcd. The run itself is sim/harness's;
// this package is its Backend:
//
//   - it connects, installs the system's CRDs if the cluster does not serve
//     the subject's kind, creates the workload's namespace if needed, and
//     refuses to start when objects of the workload's names already exist
//     there;
//   - it takes the truth from apiserver watches (a list, then a
//     RetryWatcher from its resourceVersion) of every kind the subject's
//     tracker needs (sim/subject), in the workload's namespace, read as
//     unstructured objects; records are stamped when the watch delivers
//     them, so latency includes the watch's own delay, and the
//     resourceVersion stands in for etcd's revision. What an operator
//     running elsewhere reports is read the same way, from its committed
//     status;
//   - the simulated kubelet runs unless told not to: an envtest API server
//     has no kubelet. On a real cluster whose kubelets run the Pods, switch
//     it off (--simulated-kubelet=false);
//   - when Options.Chaos holds exported Chaos Mesh objects (driftlab chaos
//     export), it creates them when the workload starts — their schedule
//     counts from their creation — and the harness records each exported
//     fault's window (fault-start/fault-stop) by the scenario's schedule.
//     Faults not in Options.Chaos are reported as skipped, so they fail the
//     "faults" check and the run: this backend injects nothing itself;
//   - finally it deletes what it created: the chaos objects, the
//     workload's objects and, when Pods are selected by a name label,
//     their Pods (unless Options.Keep).
package cluster

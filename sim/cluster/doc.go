// Package cluster is the "cluster" backend: a scenario's workload, history
// and invariants against any Kubernetes API server reached by a kubeconfig
// (a kind cluster with Chaos Mesh in `make chaos`, or any existing
// cluster), with no access to its etcd.
//
// What it does, in order:
//
//   - connects, installs the KVCluster CRD if the cluster lacks it, and
//     creates the workload's namespace if needed; it refuses to start when
//     KVClusters of the workload's names already exist there;
//   - takes the truth from apiserver watches (member Pods by the cluster
//     label, KVClusters) in the workload's namespace, fed to the same rules
//     (sim/truth) as the other backends; records are stamped when the watch
//     delivers them, so latency includes the watch's own delay, and the
//     resourceVersion stands in for etcd's revision;
//   - runs the simulated kubelet (sim/kubelet) unless told not to: an
//     envtest API server has no kubelet to make member Pods Ready. On a real
//     cluster whose kubelets run the member Pods, switch it off
//     (--simulated-kubelet=false);
//   - runs the reference operator in-process (operator.Run) against the
//     cluster when Options.Operator is set, with its history records
//     (events, reconciles, status writes); otherwise the operator runs
//     elsewhere (in the cluster) and its status writes are derived from the
//     KVCluster status changes the watch sees (status-write records with
//     Detail "derived from the apiserver watch");
//   - applies the workload through the API server at its times, and, when
//     Options.Chaos holds exported Chaos Mesh objects (driftlab chaos
//     export), creates them when the workload starts — their schedule
//     counts from their creation — and records each exported fault's window
//     (fault-start/fault-stop) by the scenario's schedule. Faults not in
//     Options.Chaos are reported as skipped, so they fail the "faults"
//     check: this backend injects nothing itself;
//   - waits for convergence, checks the invariants (sim/invariant) and
//     writes the same summary.json, history.jsonl and latency.hlog as the
//     other backends, even when the run fails part-way;
//   - finally deletes what it created: the chaos objects, the workload's
//     KVClusters and their member Pods (unless Options.Keep).
package cluster

// Package chaos renders a scenario's faults as Chaos Mesh objects, built
// from the github.com/chaos-mesh/chaos-mesh/api types, for running the same
// scenario on a real (kind) cluster with Chaos Mesh installed:
//
//   - wal-fsync-delay → an IOChaos "latency" on the fsync method of etcd's
//     data volume (/var/lib/etcd, the WAL under member/wal) in the etcd
//     static Pod (kube-system, component=etcd). Chaos Mesh's IOChaos has no
//     jitter, so the delay is the fault's mean (delay + jitter/2); its
//     percent is the fault's probability.
//   - network-retransmit → a NetworkChaos: loss (the kernel's own TCP
//     retransmission then does what the local backend's proxy models) plus
//     the fault's latency as netem delay. Link operator-apiserver selects
//     the operator's Pod, direction "to", every peer (the operator talks only
//     to the apiserver, through the kubernetes Service IP, which a target
//     selector on the apiserver Pod would miss). Link apiserver-etcd selects
//     the etcd Pod on device "lo": on kind (and kubeadm) the apiserver
//     reaches etcd at 127.0.0.1:2379, and both are host-network Pods, so
//     the traffic between them is on the node's loopback device.
//   - gc-assist-pressure → a StressChaos memory stressor in the operator's
//     container, sized like the fault's map and its copy (entries × 256 B
//     × 2), plus the operator's own heap growth, which no Chaos Mesh object
//     can cause: Export.OperatorArgs carries `--gc-pressure=entries=N,
//     rate=R,after=START,for=DURATION` for `driftlab operator`, printed as
//     "# OPERATOR-ARGS" lines that scripts/chaos.sh adds to the operator's
//     Deployment just before the workload starts.
//   - watcher-exhaustion → a batch/v1 Job running `driftlab watchstorm` on
//     the control-plane node (host network) against etcd's client URL there
//     (https://127.0.0.1:2379), with the node's etcd CA and healthcheck
//     client certificate mounted from /etc/kubernetes/pki/etcd, and the
//     fault's start as --delay and its length as --duration.
//
// The chaos objects' schedule becomes one Workflow: a Parallel entry with,
// per fault, a Serial branch of a Suspend node (the start offset) and the
// chaos node (deadline = duration, or up to the end of the workload). The
// Workflow and the Jobs start counting when they are created; `driftlab run
// --backend cluster --chaos FILE` creates them when the workload starts.
//
// Faults that have no Chaos Mesh counterpart (afterOps schedules, which
// depend on workload progress; failpoints, which need a failpoint-enabled
// build; virtual-backend perturbations; anything unknown) are returned as
// Skipped with the reason, and Export writes them as YAML comments.
// Parameters that cannot be carried over (resetConnections, minRTO/maxRTO,
// maxConcurrentStreams) are noted in the same way.
//
// Output is deterministic: objects in fault order, keys sorted.
package chaos

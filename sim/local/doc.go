// Package local is driftlab's local backend: an embedded etcd
// (go.etcd.io/etcd/server/v3/embed) in the harness process and an envtest
// kube-apiserver process pointed at it, for any operator (sim/harness runs
// it and the simulated kubelet).
//
// Start brings up the control plane on free 127.0.0.1 ports (etcd data in a
// temporary directory, an admin user, the system's CRDs installed, a
// kubeconfig with mode 0600 in the run directory) and reports how long each
// part took; Stop tears it all down. As a harness.Backend it builds the
// scenario's faults first (they claim what they need before etcd starts),
// and takes the truth by watching the embedded etcd in-process, so faults
// on the API paths cannot distort it: every watched kind's registry prefix
// is derived from its resource (RegistryPrefix), and each stored object is
// decoded as kube-apiserver wrote it (protobuf for built-in kinds, JSON for
// custom resources).
package local

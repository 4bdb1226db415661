// Package local is driftlab's local backend: an embedded etcd
// (go.etcd.io/etcd/server/v3/embed) in the harness process, an envtest
// kube-apiserver process pointed at it, the reference operator in a process
// of its own, and the simulated kubelet.
//
// Start brings up the control plane on free 127.0.0.1 ports (etcd data in a
// temporary directory, an admin user, the CRDs installed, a kubeconfig with
// mode 0600 in the run directory) and reports how long each part took; Stop
// tears it all down. Run executes a whole scenario: it records the truth by
// watching the embedded etcd in-process (so faults on the API paths cannot
// distort it), applies the workload, waits for convergence and checks the
// invariants.
package local

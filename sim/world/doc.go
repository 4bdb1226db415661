// Package world adds to a running control plane (etcd + kube-apiserver)
// what real operators rely on and envtest leaves out: a
// kube-controller-manager (Deployments get ReplicaSets, ReplicaSets get
// Pods, owner references are garbage-collected, namespaces finish
// deleting), a kube-scheduler, and simulated Nodes that stay Ready so the
// scheduler binds Pods to them.
//
// The two components are the upstream binaries (built by internal/assets),
// run as child processes with leader election off, serving only on
// 127.0.0.1, logging into Config.Dir. The Nodes are Node objects kept
// alive by an in-process heartbeater (Lease renewals in kube-node-lease and
// Ready-condition heartbeats); nothing runs Pods on them: making a bound
// Pod Running and Ready is the simulated kubelet's job (sim/kubelet).
//
//	w, err := world.Start(ctx, world.Config{
//		Dir: dir, Admin: env.Admin, Kubeconfig: env.Kubeconfig,
//		APIServer: env.APIServer, Nodes: 3,
//	})
//	...
//	defer w.Stop()
//
// Stop the world before the apiserver it talks to.
package world

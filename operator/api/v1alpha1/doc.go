// Package v1alpha1 holds the KVCluster API (group kv.driftlab.io, version
// v1alpha1) managed by driftlab's reference operator.
//
// A KVCluster asks for spec.replicas member Pods; the operator reports how
// many of them are Ready in status.readyReplicas, the generation it acted on
// in status.observedGeneration, and a Ready condition. driftlab checks that
// this status tells the truth (drift) and how fast it follows the world
// (latency).
//
// +kubebuilder:object:generate=true
// +groupName=kv.driftlab.io
package v1alpha1

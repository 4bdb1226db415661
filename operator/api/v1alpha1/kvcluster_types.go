package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionReady is the condition type that is True when every requested
// member Pod is Ready.
const ConditionReady = "Ready"

// LabelCluster is the label that ties a member Pod to its KVCluster.
const LabelCluster = "kv.driftlab.io/cluster"

// LabelOrdinal is the label that holds a member Pod's ordinal (0..replicas-1).
const LabelOrdinal = "kv.driftlab.io/ordinal"

// KVClusterSpec is the desired state of a KVCluster.
type KVClusterSpec struct {
	// Replicas is the number of member Pods wanted.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas int32 `json:"replicas"`
}

// KVClusterStatus is what the operator last observed.
type KVClusterStatus struct {
	// ReadyReplicas is the number of member Pods that are Ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// ObservedGeneration is the metadata.generation this status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions hold the Ready condition.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KVCluster is a key-value store cluster managed by the reference operator.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Observed",type=integer,JSONPath=`.status.observedGeneration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KVCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   KVClusterSpec   `json:"spec,omitempty"`
	Status KVClusterStatus `json:"status,omitempty"`
}

// KVClusterList is a list of KVClusters.
//
// +kubebuilder:object:root=true
type KVClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KVCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&KVCluster{}, &KVClusterList{})
}

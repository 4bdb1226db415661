package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionReady is True when every wanted Pod is available.
const ConditionReady = "Ready"

// LabelApp ties a Pod to its WebApp.
const LabelApp = "webapp.example.com/app"

// WebAppSpec is what the user wants.
type WebAppSpec struct {
	// Replicas is the number of Pods.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
	// Image is the Pods' container image.
	// +kubebuilder:default="nginx:1.27"
	Image string `json:"image,omitempty"`
	// Greeting is served by the app; it lives in the WebApp's ConfigMap.
	// +optional
	Greeting string `json:"greeting,omitempty"`
}

// WebAppStatus is what the operator last observed.
type WebAppStatus struct {
	// AvailableReplicas is the number of the WebApp's Pods that are Ready.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// ObservedGeneration is the generation this status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions hold Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WebApp is a web application of identical Pods.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
type WebApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WebAppSpec   `json:"spec,omitempty"`
	Status WebAppStatus `json:"status,omitempty"`
}

// WebAppList is a list of WebApps.
//
// +kubebuilder:object:root=true
type WebAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WebApp `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WebApp{}, &WebAppList{})
}

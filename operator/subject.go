package operator

import (
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/subject"
)

// Subject is the reference operator's declaration: the KVCluster, what its
// status reports and what is true, in the same form any operator's
// declaration takes. The ready count's latency samples start when a Pod
// becomes Ready (the count increases) and end when the status claims at
// least that count; the Ready condition is computed in Go from the ready
// count and spec.replicas.
func Subject() subject.Spec {
	return subject.Spec{
		APIVersion: kvv1.GroupVersion.String(),
		Kind:       "KVCluster",
		Resource:   "kvclusters",
		NamePrefix: scenarios.ReferenceNamePrefix,
		Template:   subject.Object{"spec": map[string]any{"replicas": int64(1)}},
		Replicas:   "spec.replicas",
		Pods:       subject.PodSelection{Selector: map[string]string{kvv1.LabelCluster: "{{name}}"}},
		Properties: []subject.Property{
			{
				Name: "readyReplicas", Reported: "status.readyReplicas", Truth: subject.Truth{ReadyPods: true},
				Latency: subject.LatencyIncreases, Reflect: subject.ReflectAtLeast,
			},
			{
				Name: "observedGeneration", Reported: "status.observedGeneration", Truth: subject.Truth{Field: "metadata.generation"},
				Latency: subject.LatencyOff, NoStaleness: true,
			},
			{
				Name: "ready", Reported: "status.conditions[type=Ready].status",
				Truth:   subject.Truth{Func: readyCondition, FuncName: ReadyConditionFunc},
				Latency: subject.LatencyOff, NoStaleness: true,
			},
		},
	}
}

// ReadyConditionFunc names the Ready condition's truth function.
const ReadyConditionFunc = "kvcluster-ready-condition"

func init() { subject.RegisterFunc(ReadyConditionFunc, readyCondition) }

// readyCondition is the Ready condition's truth: True when every wanted
// member is Ready.
func readyCondition(in subject.TruthInput) (any, error) {
	ready, _ := in.Truth("readyReplicas")
	want, _ := in.Field("spec.replicas")
	if want == nil {
		want = int64(0)
	}
	if ready == want {
		return "True", nil
	}
	return "False", nil
}

package scenarios

import (
	"fmt"
	"strings"
)

// Kinds of explicit workload operations (workload.operations[].op).
var OperationKinds = []string{"create", "scale", "annotate", "delete"}

// DefaultAnnotationKey is the annotation an annotate operation sets when it
// names no key (the generated workload's "tick").
const DefaultAnnotationKey = "driftlab.io/tick"

// Operation is one explicit workload operation on a KVCluster of the
// workload's namespace, applied At after the workload starts:
//
//	operations:
//	  - {at: 0s, op: create, cluster: kv-a, replicas: 3}
//	  - {at: 1.5s, op: scale, cluster: kv-a, replicas: 5}
//	  - {at: 2s, op: annotate, cluster: kv-a, key: example.com/owner, value: team-b}
//	  - {at: 9s, op: delete, cluster: kv-a}
type Operation struct {
	// At is when the operation is due, from the start of the workload.
	At Duration `yaml:"at" json:"at"`
	// Op is create, scale, annotate or delete.
	Op string `yaml:"op" json:"op"`
	// Cluster is the KVCluster's name.
	Cluster string `yaml:"cluster" json:"cluster"`
	// Replicas is spec.replicas (create, scale).
	Replicas int `yaml:"replicas" json:"replicas,omitempty"`
	// Key is the annotation's key (annotate); default DefaultAnnotationKey.
	Key string `yaml:"key" json:"key,omitempty"`
	// Value is the annotation's value (annotate).
	Value string `yaml:"value" json:"value,omitempty"`
}

func validateOperations(w Workload) error {
	for i, op := range w.Operations {
		f := fmt.Sprintf("workload.operations[%d]", i)
		if err := oneOf(f+".op", op.Op, OperationKinds); err != nil {
			return err
		}
		if op.At.Duration < 0 {
			return fieldErr(f+".at", "must not be negative, got %s", op.At)
		}
		if op.At.Duration > w.Duration.Duration {
			return fieldErr(f+".at", "%s is after the workload's end (workload.duration %s)", op.At, w.Duration)
		}
		if i > 0 && op.At.Duration < w.Operations[i-1].At.Duration {
			return fieldErr(f+".at", "%s is before the operation above it (%s): list operations in time order", op.At, w.Operations[i-1].At)
		}
		if !validName(op.Cluster) {
			return fieldErr(f+".cluster", "%q is not a valid object name (lower-case letters, digits, '-', '.'; at most 253)", op.Cluster)
		}
		if op.Replicas < 0 || op.Replicas > 1000 {
			return fieldErr(f+".replicas", "must be within 0..1000, got %d", op.Replicas)
		}
		if op.Op != "create" && op.Op != "scale" && op.Replicas != 0 {
			return fieldErr(f+".replicas", "only create and scale set replicas")
		}
		if op.Op != "annotate" && (op.Key != "" || op.Value != "") {
			return fieldErr(f+".key", "only annotate sets key and value")
		}
		if op.Key != "" && (strings.ContainsAny(op.Key, " \t\n\"") || len(op.Key) > 316) {
			return fieldErr(f+".key", "%q is not a valid annotation key", op.Key)
		}
	}
	return nil
}

// validName reports whether s is a DNS subdomain name, as Kubernetes object
// names are.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '-' || r == '.') && i > 0 && i < len(s)-1
		if !ok {
			return false
		}
	}
	return true
}

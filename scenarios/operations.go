package scenarios

import (
	"fmt"
	"strings"
)

// Kinds of explicit workload operations (workload.operations[].op).
var OperationKinds = []string{"create", "scale", "annotate", "patch", "jsonpatch", "delete"}

// DefaultAnnotationKey is the annotation an annotate operation sets when it
// names no key (the generated workload's "tick").
const DefaultAnnotationKey = "driftlab.io/tick"

// Operation is one explicit workload operation on an object of the
// workload's namespace — of the subject kind unless apiVersion and kind
// name another — applied At after the workload starts:
//
//	operations:
//	  - {at: 0s, op: create, name: web-a, replicas: 3}
//	  - {at: 1.5s, op: scale, name: web-a, replicas: 5}
//	  - {at: 2s, op: annotate, name: web-a, key: example.com/owner, value: team-b}
//	  - {at: 3s, op: patch, name: web-a, patch: {spec: {image: nginx:1.27}}}
//	  - {at: 4s, op: jsonpatch, name: web-a, jsonPatch: [{op: replace, path: /spec/paused, value: true}]}
//	  - {at: 5s, op: create, apiVersion: v1, kind: ConfigMap, name: web-a-extra, object: {data: {k: v}}}
//	  - {at: 9s, op: delete, name: web-a}
type Operation struct {
	// At is when the operation is due, from the start of the workload.
	At Duration `yaml:"at" json:"at"`
	// Op is create, scale, annotate, patch, jsonpatch or delete.
	Op string `yaml:"op" json:"op"`
	// Name is the object's name.
	Name string `yaml:"name" json:"name"`
	// APIVersion and Kind name an object of another kind than the
	// subject's (a ConfigMap the operator reads, say).
	APIVersion string `yaml:"apiVersion" json:"apiVersion,omitempty"`
	Kind       string `yaml:"kind" json:"kind,omitempty"`
	// Replicas is the replica count (create and scale of the subject).
	Replicas int `yaml:"replicas" json:"replicas,omitempty"`
	// Key is the annotation's key (annotate); default DefaultAnnotationKey.
	Key string `yaml:"key" json:"key,omitempty"`
	// Value is the annotation's value (annotate).
	Value string `yaml:"value" json:"value,omitempty"`
	// Patch is a JSON merge patch (patch).
	Patch map[string]any `yaml:"patch" json:"patch,omitempty"`
	// JSONPatch is a JSON patch, a list of operations (jsonpatch).
	JSONPatch []map[string]any `yaml:"jsonPatch" json:"jsonPatch,omitempty"`
	// Object is the object to create, for another kind (create); the
	// subject's objects come from subject.template.
	Object map[string]any `yaml:"object" json:"object,omitempty"`
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
		if !validName(op.Name) {
			return fieldErr(f+".name", "%q is not a valid object name (lower-case letters, digits, '-', '.'; at most 253)", op.Name)
		}
		other := op.Kind != "" || op.APIVersion != ""
		if other && (op.Kind == "" || op.APIVersion == "") {
			return fieldErr(f+".kind", "name another kind with both apiVersion and kind")
		}
		if op.Replicas < 0 || op.Replicas > 1000 {
			return fieldErr(f+".replicas", "must be within 0..1000, got %d", op.Replicas)
		}
		if (op.Op != "create" && op.Op != "scale" || other) && op.Replicas != 0 {
			return fieldErr(f+".replicas", "only create and scale of the subject's objects set replicas")
		}
		if other && op.Op == "scale" {
			return fieldErr(f+".op", "scale acts on the subject's objects: patch another kind")
		}
		if op.Op != "annotate" && (op.Key != "" || op.Value != "") {
			return fieldErr(f+".key", "only annotate sets key and value")
		}
		if op.Key != "" && (strings.ContainsAny(op.Key, " \t\n\"") || len(op.Key) > 316) {
			return fieldErr(f+".key", "%q is not a valid annotation key", op.Key)
		}
		if (op.Op == "patch") != (op.Patch != nil) {
			return fieldErr(f+".patch", "a patch operation needs patch (a merge patch), and only it")
		}
		if (op.Op == "jsonpatch") != (op.JSONPatch != nil) {
			return fieldErr(f+".jsonPatch", "a jsonpatch operation needs jsonPatch (a list of operations), and only it")
		}
		if op.Object != nil && (op.Op != "create" || !other) {
			return fieldErr(f+".object", "only a create of another kind sets object (the subject's objects come from subject.template)")
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

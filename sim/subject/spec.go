package subject

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/driftlab/driftlab/sim/history"
)

// Spec declares the operator's custom resource under test: which kind
// the workload creates, how to install it, and what the operator reports
// about each object against what is true in the cluster. A scenario
// without one tests the reference operator's KVCluster, whose Spec the
// reference operator declares in Go (operator.Subject).
//
//	subject:
//	  apiVersion: example.com/v1
//	  kind: WebApp
//	  crds: [config/crd]
//	  template: {spec: {image: nginx}}
//	  replicas: spec.replicas
//	  pods: {owned: true}
//	  properties:
//	    - {name: availableReplicas, reported: status.availableReplicas, truth: {readyPods: true}}
//	    - {name: observedGeneration, reported: status.observedGeneration, truth: {field: metadata.generation}}
//	    - name: ready
//	      reported: status.conditions[type=Ready].status
//	      truth: {cel: 'truth.availableReplicas == object.spec.replicas ? "True" : "False"'}
type Spec struct {
	// APIVersion and Kind name the objects under test ("example.com/v1",
	// "WebApp").
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
	// Resource is the plural resource name ("webapps"). Default: the
	// plural of the installed CRD of that kind, else lower-case kind + "s".
	Resource string `yaml:"resource" json:"resource,omitempty"`
	// CRDs are CRD files or directories to install, as envtest takes them;
	// relative paths are relative to the scenario file.
	CRDs []string `yaml:"crds" json:"crds,omitempty"`
	// NamePrefix names the workload's objects: prefix + index. Default:
	// lower-case kind + "-".
	NamePrefix string `yaml:"namePrefix" json:"namePrefix,omitempty"`
	// Template is the object the workload creates (apiVersion, kind,
	// metadata.name and namespace are filled in, and {{name}} in any
	// string is the object's name).
	Template Object `yaml:"template" json:"template,omitempty"`
	// Replicas is the field path the workload's initialReplicas and scale
	// set ("spec.replicas"); empty means the workload does not scale.
	Replicas string `yaml:"replicas" json:"replicas,omitempty"`
	// Pods says which Pods belong to an object: the simulated kubelet
	// serves them and readyPods truths count them.
	Pods PodSelection `yaml:"pods" json:"pods"`
	// Properties are what the invariants compare: each a reported value
	// and the truth it must equal.
	Properties []Property `yaml:"properties" json:"properties"`
}

// PodSelection says which Pods belong to an object of the subject.
type PodSelection struct {
	// Owned selects the Pods the object owns, directly or through
	// Deployments, ReplicaSets, StatefulSets, DaemonSets and Jobs it owns
	// (owner references).
	Owned bool `yaml:"owned" json:"owned,omitempty"`
	// Selector selects Pods by labels; a value may name the object with
	// {{name}} or {{namespace}} ("app.example.com/webapp: '{{name}}'"). A
	// key with an empty value only has to be present.
	Selector map[string]string `yaml:"selector" json:"selector,omitempty"`
}

// Latency modes and reflection rules of a property (history's).
const (
	LatencyChanges   = history.LatencyChanges
	LatencyIncreases = history.LatencyIncreases
	LatencyOff       = history.LatencyOff
	ReflectEqual     = history.ReflectEqual
	ReflectAtLeast   = history.ReflectAtLeast
)

// Property is one thing the operator reports about an object, and the
// truth it must equal.
type Property struct {
	// Name identifies the property in results ("availableReplicas").
	Name string `yaml:"name" json:"name"`
	// Reported is the field path of the reported value:
	// "status.availableReplicas", "status.conditions[type=Ready].status",
	// `metadata.annotations["example.com/x"]`.
	Reported string `yaml:"reported" json:"reported"`
	// Default is the reported value when the field is missing (for a count
	// written with omitempty, "0"); empty means a missing field is never in
	// sync.
	Default string `yaml:"default" json:"default,omitempty"`
	// Truth is what the reported value must equal.
	Truth Truth `yaml:"truth" json:"truth"`
	// Latency is which truth changes start a latency sample: changes
	// (default), increases, off.
	Latency string `yaml:"latency" json:"latency,omitempty"`
	// Reflect is when the reported value reflects a change: equal
	// (default) or atLeast.
	Reflect string `yaml:"reflect" json:"reflect,omitempty"`
	// NoStaleness exempts the property from the staleness check.
	NoStaleness bool `yaml:"noStaleness" json:"noStaleness,omitempty"`
}

// Truth is what a property's reported value must equal, computed from the
// committed state of the cluster. Exactly one form is set.
type Truth struct {
	// Field is a field of the object itself ("metadata.generation").
	Field string `yaml:"field" json:"field,omitempty"`
	// ReadyPods counts the object's Pods (Subject.Pods) that are Ready and
	// not being deleted.
	ReadyPods bool `yaml:"readyPods" json:"readyPods,omitempty"`
	// Pods counts the object's Pods that are not being deleted.
	Pods bool `yaml:"pods" json:"pods,omitempty"`
	// Object is a field of another object: one the subject object owns, or
	// one named from it.
	Object *RelatedField `yaml:"object" json:"object,omitempty"`
	// CEL is an expression (github.com/google/cel-go) over object (the
	// object, as JSON), truth (the truths of the properties declared
	// before this one, by name), readyPods and pods (counts).
	CEL string `yaml:"cel" json:"cel,omitempty"`

	// Func computes the truth in Go (Go API only). FuncName names it in
	// results and files: a file that says func: NAME gets the function
	// registered under NAME (RegisterFunc).
	Func     TruthFunc `yaml:"-" json:"-"`
	FuncName string    `yaml:"func" json:"func,omitempty"`
}

// TruthFunc computes a truth in Go from the committed state: return a
// number, string, bool, nil, or anything encoding/json writes.
type TruthFunc func(in TruthInput) (any, error)

// TruthInput is what a TruthFunc reads.
type TruthInput interface {
	// Object is the object as committed: a typed object when the harness
	// knows its Go type, else *unstructured.Unstructured.
	Object() any
	// Field reads a field path of the object; ok is false when it is
	// missing.
	Field(path string) (v any, ok bool)
	// Truth is the truth of a property declared before this one.
	Truth(name string) (v any, ok bool)
	// ReadyPods and Pods count the object's Pods (see Truth).
	ReadyPods() int
	Pods() int
}

// RelatedField is a field of another object related to the subject
// object.
type RelatedField struct {
	// APIVersion and Kind of the other object ("apps/v1", "Deployment").
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
	// Name names it, with {{name}} for the subject object's name; empty
	// means the one object of that kind the subject object owns.
	Name string `yaml:"name" json:"name,omitempty"`
	// Field is the field path to read ("status.availableReplicas").
	Field string `yaml:"field" json:"field"`
	// Default is the value when the object or field is missing; empty
	// means null.
	Default string `yaml:"default" json:"default,omitempty"`
}

// RegisterFunc makes a Go truth function known by name, for declarations
// that name it (truth: {func: NAME}), such as a scenario file or bundle of
// a run whose subject was declared in Go. Names are unique.
func RegisterFunc(name string, fn TruthFunc) {
	funcMu.Lock()
	defer funcMu.Unlock()
	if _, dup := funcs[name]; dup {
		panic("subject: truth function " + name + " registered twice")
	}
	funcs[name] = fn
}

// LookupFunc returns the truth function registered under name.
func LookupFunc(name string) (TruthFunc, bool) {
	funcMu.Lock()
	defer funcMu.Unlock()
	fn, ok := funcs[name]
	return fn, ok
}

var (
	funcMu sync.Mutex
	funcs  = map[string]TruthFunc{}
)

// Object is a Kubernetes object or a part of one, as decoded from YAML:
// map[string]any with JSON-compatible values.
type Object map[string]any

var (
	kindRe = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	nameRe = regexp.MustCompile(`^[a-zA-Z][A-Za-z0-9_]*$`)
)

// Describe says in a few words what the truth is, for messages.
func (t Truth) Describe() string {
	switch {
	case t.Field != "":
		return t.Field
	case t.ReadyPods:
		return "Ready Pods"
	case t.Pods:
		return "Pods"
	case t.Object != nil:
		return fmt.Sprintf("%s %s of %s", t.Object.Kind, objName(t.Object.Name), t.Object.Field)
	case t.CEL != "":
		return "cel: " + t.CEL
	case t.Func != nil || t.FuncName != "":
		return "func " + t.FuncName
	}
	return "(none)"
}

func objName(n string) string {
	if n == "" {
		return "owned"
	}
	return n
}

func (t Truth) forms() []string {
	var set []string
	if t.Field != "" {
		set = append(set, "field")
	}
	if t.ReadyPods {
		set = append(set, "readyPods")
	}
	if t.Pods {
		set = append(set, "pods")
	}
	if t.Object != nil {
		set = append(set, "object")
	}
	if t.CEL != "" {
		set = append(set, "cel")
	}
	if t.Func != nil || t.FuncName != "" {
		set = append(set, "func")
	}
	return set
}

// setDefaults fills in what a subject leaves out.
func (s *Spec) setDefaults() {
	if s.NamePrefix == "" && s.Kind != "" {
		s.NamePrefix = strings.ToLower(s.Kind) + "-"
	}
	for i := range s.Properties {
		p := &s.Properties[i]
		if p.Latency == "" {
			p.Latency = LatencyChanges
		}
		if p.Reflect == "" {
			p.Reflect = ReflectEqual
		}
	}
}

// SetDefaults fills in what a declaration leaves out (name prefix,
// latency and reflection modes).
func (s *Spec) SetDefaults() { s.setDefaults() }

// Validate checks a declaration (after SetDefaults); a *FieldError names
// the field, under prefix ("subject").
func (s *Spec) Validate(prefix string) error {
	f := prefix
	if s.APIVersion == "" {
		return fieldErr(f+".apiVersion", "required (e.g. example.com/v1)")
	}
	if strings.Count(s.APIVersion, "/") > 1 || strings.HasPrefix(s.APIVersion, "/") || strings.HasSuffix(s.APIVersion, "/") {
		return fieldErr(f+".apiVersion", "%q is not group/version or version", s.APIVersion)
	}
	if !kindRe.MatchString(s.Kind) {
		return fieldErr(f+".kind", "%q is not a kind (CamelCase, e.g. WebApp)", s.Kind)
	}
	if s.Resource != "" && !validName(s.Resource) {
		return fieldErr(f+".resource", "%q is not a resource name (lower-case plural, e.g. webapps)", s.Resource)
	}
	for i, c := range s.CRDs {
		if c == "" {
			return fieldErr(fmt.Sprintf("%s.crds[%d]", f, i), "empty path")
		}
	}
	if !validName(strings.TrimSuffix(s.NamePrefix, "-") + "-0") {
		return fieldErr(f+".namePrefix", "%q does not make valid object names", s.NamePrefix)
	}
	if len(s.NamePrefix) > 200 {
		return fieldErr(f+".namePrefix", "at most 200 characters, got %d", len(s.NamePrefix))
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if _, ok := s.Template[k]; ok {
			return fieldErr(f+".template."+k, "set by the subject: leave it out of the template")
		}
	}
	if s.Replicas != "" {
		if err := checkPath(s.Replicas); err != nil {
			return fieldErr(f+".replicas", "%v", err)
		}
	}
	for k := range s.Pods.Selector {
		if k == "" || strings.ContainsAny(k, " \t\n,=!") {
			return fieldErr(f+".pods.selector", "%q is not a label key", k)
		}
	}
	if len(s.Properties) == 0 {
		return fieldErr(f+".properties", "declare at least one property (a reported value and its truth)")
	}
	seen := map[string]bool{}
	for i := range s.Properties {
		p := &s.Properties[i]
		pf := fmt.Sprintf("%s.properties[%d]", f, i)
		if !nameRe.MatchString(p.Name) {
			return fieldErr(pf+".name", "%q: use letters, digits and _ (a CEL identifier)", p.Name)
		}
		if seen[p.Name] {
			return fieldErr(pf+".name", "%q declared twice", p.Name)
		}
		seen[p.Name] = true
		if err := checkPath(p.Reported); err != nil {
			return fieldErr(pf+".reported", "%v", err)
		}
		if err := checkJSONValue(p.Default); err != nil {
			return fieldErr(pf+".default", "%v", err)
		}
		if err := oneOf(pf+".latency", p.Latency, []string{LatencyChanges, LatencyIncreases, LatencyOff}); err != nil {
			return err
		}
		if err := oneOf(pf+".reflect", p.Reflect, []string{ReflectEqual, ReflectAtLeast}); err != nil {
			return err
		}
		t := p.Truth
		switch forms := t.forms(); len(forms) {
		case 0:
			return fieldErr(pf+".truth", "required: one of field, readyPods, pods, object, cel, func")
		case 1:
		default:
			return fieldErr(pf+".truth", "set one form, got %s", strings.Join(forms, " and "))
		}
		if (t.ReadyPods || t.Pods) && !s.Pods.Owned && len(s.Pods.Selector) == 0 {
			return fieldErr(pf+".truth", "counts Pods, but subject.pods selects none: set pods.owned or pods.selector")
		}
		if t.Field != "" {
			if err := checkPath(t.Field); err != nil {
				return fieldErr(pf+".truth.field", "%v", err)
			}
		}
		if o := t.Object; o != nil {
			if o.APIVersion == "" {
				return fieldErr(pf+".truth.object.apiVersion", "required (e.g. apps/v1)")
			}
			if !kindRe.MatchString(o.Kind) {
				return fieldErr(pf+".truth.object.kind", "%q is not a kind", o.Kind)
			}
			if err := checkPath(o.Field); err != nil {
				return fieldErr(pf+".truth.object.field", "%v", err)
			}
			if err := checkJSONValue(o.Default); err != nil {
				return fieldErr(pf+".truth.object.default", "%v", err)
			}
		}
		if t.CEL != "" {
			var earlier []string
			for _, q := range s.Properties[:i] {
				earlier = append(earlier, q.Name)
			}
			if _, err := compileCEL(t.CEL, earlier); err != nil {
				return fieldErr(pf+".truth.cel", "%v", err)
			}
		}
	}
	return nil
}

// FieldError is a problem with one field of a declaration; Field is its
// dotted path ("subject.properties[1].truth.cel").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fieldErr(field, "unknown value %q (want one of: %s)", v, strings.Join(allowed, ", "))
}

func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("required: a field path such as status.readyReplicas")
	}
	_, err := ParsePath(p)
	return err
}

func checkJSONValue(v string) error {
	if v == "" {
		return nil
	}
	_, err := ParseJSON(v)
	return err
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

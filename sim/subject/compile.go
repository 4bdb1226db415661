package subject

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/driftlab/driftlab/sim/history"
)

// Subject is a compiled Spec: what the truth tracker, the workload and
// the kubelet of a run read.
type Subject struct {
	// Spec is the declaration, with defaults filled in.
	Spec Spec
	// GVK and GVR are the subject kind and resource.
	GVK schema.GroupVersionKind
	GVR schema.GroupVersionResource

	props []prop
	// selector is the Pod label selection, each value a template.
	selector []labelReq
	// nameLabel, when set, is the one selector key whose value is the
	// object's name: Pods are then matched to objects through that label.
	nameLabel string
	// watched are the kinds the tracker reads: the subject, Pods, then
	// related kinds (object truths, owner chains).
	watched []Watched
}

type labelReq struct {
	key, value string // value "" means the key has to be present
}

// Roles of watched kinds.
const (
	RoleSubject = "subject"
	RolePods    = "pods"
	RoleRelated = "related"
)

// Watched is one kind the truth tracker needs commits of.
type Watched struct {
	GVK  schema.GroupVersionKind
	GVR  schema.GroupVersionResource
	Role string
	// Namespaced is false for cluster-scoped kinds.
	Namespaced bool
	// Served is false when the API server does not serve the kind (a
	// related kind of an API group it lacks): nothing of it is watched.
	Served bool
}

type truthKind uint8

const (
	truthField truthKind = iota
	truthReadyPods
	truthPods
	truthObject
	truthCEL
	truthFunc
)

type prop struct {
	name      string
	reported  *Path
	def       string // canonical default of the reported value; "" none
	kind      truthKind
	field     *Path
	cel       *celTruth
	fn        TruthFunc
	related   int    // index into watched (truthObject)
	relName   string // name template; "" the owned one
	relField  *Path
	relDef    string
	latency   string
	reflect   string
	staleness bool
}

// Ownership kinds whose owner references the tracker follows from a Pod to
// its object: controllers that create Pods from templates.
var ownerChainKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "batch", Version: "v1", Kind: "Job"},
}

// PodsGVK is the Pod kind.
var PodsGVK = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}

// Compile checks a declaration and compiles its paths and expressions.
func Compile(spec Spec) (*Subject, error) {
	spec.setDefaults()
	if err := spec.Validate("subject"); err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(spec.APIVersion)
	if err != nil {
		return nil, fieldErr("subject.apiVersion", "%v", err)
	}
	s := &Subject{Spec: spec, GVK: gv.WithKind(spec.Kind)}
	res := spec.Resource
	if res == "" {
		res = DefaultResource(spec.Kind)
	}
	s.GVR = gv.WithResource(res)
	s.watched = []Watched{{GVK: s.GVK, GVR: s.GVR, Role: RoleSubject, Namespaced: true, Served: true},
		{GVK: PodsGVK, GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Role: RolePods, Namespaced: true, Served: true}}
	keys := make([]string, 0, len(spec.Pods.Selector))
	for k := range spec.Pods.Selector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.selector = append(s.selector, labelReq{key: k, value: spec.Pods.Selector[k]})
	}
	if len(s.selector) == 1 && s.selector[0].value == "{{name}}" {
		s.nameLabel = s.selector[0].key
	}
	if spec.Pods.Owned {
		for _, gvk := range ownerChainKinds {
			s.watch(gvk)
		}
	}
	var earlier []string
	for i, p := range spec.Properties {
		pf := fmt.Sprintf("subject.properties[%d]", i)
		c := prop{name: p.Name, latency: p.Latency, reflect: p.Reflect, staleness: !p.NoStaleness}
		if c.reported, err = ParsePath(p.Reported); err != nil {
			return nil, fieldErr(pf+".reported", "%v", err)
		}
		if p.Default != "" {
			if c.def, err = ParseJSON(p.Default); err != nil {
				return nil, fieldErr(pf+".default", "%v", err)
			}
		}
		t := p.Truth
		switch {
		case t.Field != "":
			c.kind = truthField
			if c.field, err = ParsePath(t.Field); err != nil {
				return nil, fieldErr(pf+".truth.field", "%v", err)
			}
		case t.ReadyPods:
			c.kind = truthReadyPods
		case t.Pods:
			c.kind = truthPods
		case t.Object != nil:
			c.kind = truthObject
			gv, err := schema.ParseGroupVersion(t.Object.APIVersion)
			if err != nil {
				return nil, fieldErr(pf+".truth.object.apiVersion", "%v", err)
			}
			c.related = s.watch(gv.WithKind(t.Object.Kind))
			c.relName = t.Object.Name
			if c.relField, err = ParsePath(t.Object.Field); err != nil {
				return nil, fieldErr(pf+".truth.object.field", "%v", err)
			}
			c.relDef = "null"
			if t.Object.Default != "" {
				if c.relDef, err = ParseJSON(t.Object.Default); err != nil {
					return nil, fieldErr(pf+".truth.object.default", "%v", err)
				}
			}
		case t.CEL != "":
			c.kind = truthCEL
			if c.cel, err = compileCEL(t.CEL, earlier); err != nil {
				return nil, fieldErr(pf+".truth.cel", "%v", err)
			}
		case t.Func != nil || t.FuncName != "":
			c.kind = truthFunc
			c.fn = t.Func
			if c.fn == nil {
				fn, ok := LookupFunc(t.FuncName)
				if !ok {
					return nil, fieldErr(pf+".truth.func", "no truth function %q is registered in this program (subject.RegisterFunc)", t.FuncName)
				}
				c.fn = fn
			}
		}
		s.props = append(s.props, c)
		earlier = append(earlier, p.Name)
	}
	return s, nil
}

// watch adds a related kind (once) and returns its index in watched.
func (s *Subject) watch(gvk schema.GroupVersionKind) int {
	for i, w := range s.watched {
		if w.GVK == gvk {
			return i
		}
	}
	s.watched = append(s.watched, Watched{GVK: gvk, GVR: gvk.GroupVersion().WithResource(DefaultResource(gvk.Kind)), Role: RoleRelated, Namespaced: true, Served: true})
	return len(s.watched) - 1
}

// Resolve sets each watched kind's resource and scope from the API
// server's discovery: the plural a CRD declares, which DefaultResource
// only guesses. The subject kind must be served; a related kind that is
// not is marked unserved (its truths read as missing).
func (s *Subject) Resolve(mapper meta.RESTMapper) error {
	for i := range s.watched {
		w := &s.watched[i]
		m, err := mapper.RESTMapping(w.GVK.GroupKind(), w.GVK.Version)
		if err != nil {
			if i == 0 {
				return fmt.Errorf("the API server does not serve %s (is its CRD installed?): %w", w.GVK, err)
			}
			w.Served = false
			continue
		}
		w.GVR, w.Served = m.Resource, true
		w.Namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		if i == 0 {
			s.GVR = m.Resource
		}
	}
	return nil
}

// Watched lists the kinds whose commits the tracker needs, in a fixed
// order: the subject (index 0), Pods (index 1), then related kinds.
func (s *Subject) Watched() []Watched { return s.watched }

// DefaultResource is the plural resource of a kind as Kubernetes
// pluralises kinds (lower case; -s, -es, -ies), for when no CRD or
// discovery says otherwise.
func DefaultResource(kind string) string {
	k := strings.ToLower(kind)
	switch {
	case k == "":
		return ""
	case strings.HasSuffix(k, "s"), strings.HasSuffix(k, "x"), strings.HasSuffix(k, "z"), strings.HasSuffix(k, "ch"), strings.HasSuffix(k, "sh"):
		return k + "es"
	case strings.HasSuffix(k, "y") && len(k) > 1 && !strings.ContainsRune("aeiou", rune(k[len(k)-2])):
		return k[:len(k)-1] + "ies"
	}
	return k + "s"
}

// Info is what the history's subject record says about the subject.
func (s *Subject) Info(operator string) *history.SubjectInfo {
	info := &history.SubjectInfo{Kind: s.GVK.String(), Operator: operator}
	for i, p := range s.Spec.Properties {
		info.Properties = append(info.Properties, history.PropertyInfo{
			Name: p.Name, Reported: p.Reported, Truth: p.Truth.Describe(),
			Latency: s.props[i].latency, Reflect: s.props[i].reflect, NoStaleness: !s.props[i].staleness,
		})
	}
	return info
}

// PodLabelKeys are the label keys every Pod of an object carries (the
// selector's keys), for a kubelet or informer that watches only those
// Pods; nil when Pods are selected by ownership.
func (s *Subject) PodLabelKeys() []string {
	if s.Spec.Pods.Owned {
		return nil
	}
	out := make([]string, 0, len(s.selector))
	for _, r := range s.selector {
		out = append(out, r.key)
	}
	return out
}

// NameLabel is the Pod label whose value names the Pod's object, when the
// subject selects Pods that way ("kv.driftlab.io/cluster": "{{name}}").
func (s *Subject) NameLabel() string { return s.nameLabel }

// ObjectName is the name of the i-th object the workload creates.
func (s *Subject) ObjectName(i int) string { return s.Spec.NamePrefix + strconv.Itoa(i) }

// expand fills a template's {{name}} and {{namespace}}.
func expand(tmpl, ns, name string) string {
	if !strings.Contains(tmpl, "{{") {
		return tmpl
	}
	r := strings.NewReplacer("{{name}}", name, "{{namespace}}", ns, "{{ name }}", name, "{{ namespace }}", ns)
	return r.Replace(tmpl)
}

package subject

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/driftlab/driftlab/sim/history"
)

// Tracker turns committed changes into truth records: it keeps the last
// committed state of the subject's objects, their Pods and the related
// objects, and after each commit says which truths and reported values
// changed. Every backend feeds it (etcd's watch on the local backend, the
// apiserver's watches on a cluster, the model's commits on the virtual
// one), so truth means the same everywhere. Not safe for concurrent use.
type Tracker struct {
	s       *Subject
	objects map[string]*objState    // "namespace/name"
	byUID   map[types.UID]*objState // subject objects
	pods    map[string]*podState
	// owners holds the owner references of related objects (ReplicaSets,
	// Deployments, …) by UID, for the Pod → object owner chain.
	owners map[types.UID]ownerNode
	// related are the objects of each related kind by "namespace/name".
	related map[int]map[string]any
	// errs counts truth evaluations that failed; pending holds the first
	// few, reported as harness records with the next truth record.
	errs    int
	pending []error
	// input is reused for truth functions.
	input funcInput
}

type objState struct {
	key, ns, name string
	uid           types.UID
	obj           any
	truth         []string // canonical JSON per property
	reported      []string // canonical JSON per property; "" missing
	selector      []labelReq
	ready, total  int
	// deleted: gone, though Pods may still name it as their owner (they
	// are matched again at their next commit).
	deleted bool
}

type podState struct {
	owner  *objState
	ready  bool // Ready and not being deleted
	live   bool // not being deleted
	ns     string
	labels map[string]string // as committed (committed objects are not changed)
	// countedIn is the object whose counts hold this Pod (as Ready when
	// countedReady), nil when none does.
	countedIn    *objState
	countedReady bool
}

// uncount takes the Pod out of the counts that hold it.
func (p *podState) uncount() {
	if o := p.countedIn; o != nil {
		o.total--
		if p.countedReady {
			o.ready--
		}
		p.countedIn = nil
	}
}

// count puts the Pod in o's counts, as it now is (a Pod being deleted is
// not counted).
func (p *podState) count(o *objState) {
	p.uncount()
	if o == nil || !p.live {
		return
	}
	p.countedIn, p.countedReady = o, p.ready
	o.total++
	if p.ready {
		o.ready++
	}
}

type ownerNode struct {
	owners []types.UID
}

// NewTracker returns a tracker of s with nothing committed yet.
func NewTracker(s *Subject) *Tracker {
	return &Tracker{s: s, objects: map[string]*objState{}, byUID: map[types.UID]*objState{}, pods: map[string]*podState{},
		owners: map[types.UID]ownerNode{}, related: map[int]map[string]any{}}
}

// Subject returns the compiled subject.
func (t *Tracker) Subject() *Subject { return t.s }

// Commit takes one committed change of an object of the kind Watched()[w]:
// obj is its new state (typed, or *unstructured.Unstructured), nil when it
// was deleted; key is "namespace/name"; rev is the commit's revision. It
// appends the records the change gives to dst, without T (the caller
// stamps the moment of the commit).
func (t *Tracker) Commit(dst []history.Record, w int, key string, obj any, rev int64) []history.Record {
	switch t.s.watched[w].Role {
	case RoleSubject:
		return t.commitObject(dst, key, obj, rev)
	case RolePods:
		return t.commitPod(dst, key, obj, rev)
	}
	return t.commitRelated(dst, w, key, obj, rev)
}

func splitKey(key string) (ns, name string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

func (t *Tracker) commitObject(dst []history.Record, key string, obj any, rev int64) []history.Record {
	o := t.objects[key]
	if obj == nil {
		if o == nil {
			return dst
		}
		delete(t.objects, key)
		delete(t.byUID, o.uid)
		o.deleted = true
		return append(dst, history.Record{Source: history.SourceTruth, Kind: history.KindObjectDeleted, Object: key, RV: rev})
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return t.fail(dst, key, rev, fmt.Errorf("%T is not an object: %w", obj, err))
	}
	n := len(t.s.props)
	if o == nil || o.uid != m.GetUID() {
		if o != nil { // replaced under the same name: the old one is gone
			dst = t.commitObject(dst, key, nil, rev)
		}
		ns, name := splitKey(key)
		o = &objState{key: key, ns: ns, name: name, uid: m.GetUID(), truth: make([]string, n), reported: make([]string, n)}
		for _, r := range t.s.selector {
			o.selector = append(o.selector, labelReq{key: r.key, value: expand(r.value, ns, name)})
		}
		t.objects[key] = o
		t.byUID[o.uid] = o
		dst = append(dst, history.Record{Source: history.SourceTruth, Kind: history.KindObjectCreated, Object: key, RV: rev})
		o.obj = obj
		t.adoptPods(o)
		dst = t.truths(dst, o, "", rev, true)
	} else {
		o.obj = obj
		dst = t.truths(dst, o, "", rev, false)
	}
	return t.reportedOf(dst, o, m, rev)
}

// adoptPods finds the Pods a new object selects among those already
// committed (an object created again under a name whose Pods are still
// there). Owned Pods cannot come before their owner: their owner
// reference names its UID.
func (t *Tracker) adoptPods(o *objState) {
	if len(o.selector) == 0 {
		return
	}
	for _, p := range t.pods {
		if p.owner != nil && !p.owner.deleted || !p.live || p.ns != o.ns {
			continue
		}
		if t.s.nameLabel != "" && p.labels[t.s.nameLabel] != o.name || t.s.nameLabel == "" && !matches(o.selector, p.labels) {
			continue
		}
		p.owner = o
		p.count(o)
	}
}

// reportedOf reads every property's reported value and records those
// that changed.
func (t *Tracker) reportedOf(dst []history.Record, o *objState, m metav1.Object, rev int64) []history.Record {
	var changed []history.Prop
	for i := range t.s.props {
		p := &t.s.props[i]
		v, ok := p.reported.Canonical(o.obj)
		if !ok {
			v = p.def
		}
		if v != o.reported[i] {
			o.reported[i] = v
			if changed == nil {
				changed = make([]history.Prop, 0, len(t.s.props))
			}
			changed = append(changed, history.Prop{Name: p.name, Value: v})
		}
	}
	if changed == nil {
		return dst
	}
	return append(dst, history.Record{Source: history.SourceTruth, Kind: history.KindReported, Object: o.key, RV: rev, Props: changed, Detail: statusManager(m)})
}

// statusManager names the field manager that last wrote the status
// subresource, from managedFields: who reported it.
func statusManager(m metav1.Object) string {
	var best *metav1.ManagedFieldsEntry
	mf := m.GetManagedFields()
	for i := range mf {
		e := &mf[i]
		if e.Subresource != "status" {
			continue
		}
		if best == nil || e.Time != nil && best.Time != nil && best.Time.Before(e.Time) {
			best = e
		}
	}
	if best == nil {
		return ""
	}
	return best.Manager
}

// truths recomputes every truth of o and records those that changed; pod
// names the Pod whose commit caused it. all records every truth (a new
// object).
func (t *Tracker) truths(dst []history.Record, o *objState, pod string, rev int64, all bool) []history.Record {
	var changed []history.Prop
	for i := range t.s.props {
		v := t.truthOf(o, i)
		if v != o.truth[i] || all {
			o.truth[i] = v
			if changed == nil {
				changed = make([]history.Prop, 0, len(t.s.props))
			}
			changed = append(changed, history.Prop{Name: t.s.props[i].name, Value: v})
		}
	}
	if changed == nil {
		return dst
	}
	dst = append(dst, history.Record{Source: history.SourceTruth, Kind: history.KindTruth, Object: o.key, Pod: pod, RV: rev, Props: changed})
	for _, err := range t.pending {
		dst = append(dst, history.Record{Source: history.SourceHarness, Kind: KindTruthError, Object: o.key, RV: rev, Err: err.Error()})
	}
	t.pending = t.pending[:0]
	return dst
}

// KindTruthError is the harness record of a truth that could not be
// computed (a CEL error, a truth function's error); the truth is null.
// The first three of a run are recorded; Errors counts them all.
const KindTruthError = "truth-error"

// Errors is how many truth evaluations failed.
func (t *Tracker) Errors() int { return t.errs }

func (t *Tracker) truthOf(o *objState, i int) string {
	p := &t.s.props[i]
	switch p.kind {
	case truthField:
		if v, ok := p.field.Canonical(o.obj); ok {
			return v
		}
		return "null"
	case truthReadyPods:
		return strconv.Itoa(o.ready)
	case truthPods:
		return strconv.Itoa(o.total)
	case truthObject:
		return t.relatedTruth(o, p)
	case truthCEL:
		vars := map[string]any{"truth": t.truthMap(o, i)}
		if p.cel.usesObject {
			vars["object"] = asJSON(o.obj)
		}
		if p.cel.usesPods {
			vars["readyPods"], vars["pods"] = int64(o.ready), int64(o.total)
		}
		v, err := p.cel.eval(vars)
		if err != nil {
			t.noteErr(err)
			return "null"
		}
		return v
	case truthFunc:
		in := &t.input
		in.t, in.o, in.upto = t, o, i
		v, err := p.fn(in)
		if err != nil {
			t.noteErr(fmt.Errorf("truth %s: %w", p.name, err))
			return "null"
		}
		return CanonicalJSON(v)
	}
	return "null"
}

func (t *Tracker) noteErr(err error) {
	t.errs++
	if t.errs <= 3 {
		t.pending = append(t.pending, err)
	}
}

func (t *Tracker) truthMap(o *objState, upto int) map[string]any {
	m := make(map[string]any, upto)
	for j := 0; j < upto; j++ {
		m[t.s.props[j].name] = decodeCanonical(o.truth[j])
	}
	return m
}

func (t *Tracker) relatedTruth(o *objState, p *prop) string {
	objs := t.related[p.related]
	var rel any
	if p.relName != "" {
		rel = objs[o.ns+"/"+expand(p.relName, o.ns, o.name)]
	} else {
		for _, r := range objs { // the one it owns
			if m, err := meta.Accessor(r); err == nil && ownedBy(m, o.uid) {
				rel = r
				break
			}
		}
	}
	if rel == nil {
		return p.relDef
	}
	if v, ok := p.relField.Canonical(rel); ok {
		return v
	}
	return p.relDef
}

func ownedBy(m metav1.Object, uid types.UID) bool {
	for _, r := range m.GetOwnerReferences() {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// asJSON is the object as CEL reads it: JSON-compatible maps.
func asJSON(obj any) any {
	switch x := obj.(type) {
	case *unstructured.Unstructured:
		return x.Object
	case map[string]any:
		return x
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil
	}
	return m
}

func (t *Tracker) commitPod(dst []history.Record, key string, obj any, rev int64) []history.Record {
	p := t.pods[key]
	var prevOwner *objState
	prevReady, prevLive, seen := false, false, p != nil
	if p != nil {
		prevOwner, prevReady, prevLive = p.owner, p.ready, p.live
		if prevOwner != nil && prevOwner.deleted {
			prevOwner = nil
		}
	}
	var owner *objState
	ready, live := false, false
	if obj == nil {
		if p != nil {
			p.uncount()
			delete(t.pods, key)
		}
	} else {
		m, err := meta.Accessor(obj)
		if err != nil {
			return t.fail(dst, key, rev, fmt.Errorf("%T is not an object: %w", obj, err))
		}
		ready, live = podReady(obj, m)
		owner = t.ownerOf(key, m)
		if p == nil {
			p = &podState{}
			t.pods[key] = p
		}
		p.owner, p.ready, p.live, p.ns, p.labels = owner, ready, live, m.GetNamespace(), m.GetLabels()
		p.count(owner)
	}
	// Pod records, for the Pods of some object.
	rec := func(kind, obj string) {
		dst = append(dst, history.Record{Source: history.SourceTruth, Kind: kind, Pod: key, Object: obj, RV: rev})
	}
	switch {
	case owner != nil:
		if !seen || prevOwner != owner {
			rec(history.KindPodCreated, owner.key)
		}
		if ready != (prevReady && prevOwner == owner) {
			if ready {
				rec(history.KindPodReady, owner.key)
			} else if prevOwner == owner {
				rec(history.KindPodUnready, owner.key)
			}
		}
	case obj == nil && prevOwner != nil:
		rec(history.KindPodDeleted, prevOwner.key)
	}
	// The truths of the objects whose Pods changed.
	changed := prevOwner != owner || prevReady != ready || prevLive != live
	if prevOwner != nil && prevOwner != owner {
		dst = t.truths(dst, prevOwner, key, rev, false)
	}
	if owner != nil && changed {
		dst = t.truths(dst, owner, key, rev, false)
	}
	return dst
}

// ownerOf finds the object a Pod belongs to: through owner references
// when the subject selects owned Pods, else by labels.
func (t *Tracker) ownerOf(key string, m metav1.Object) *objState {
	if t.s.Spec.Pods.Owned {
		if o := t.ownerByRefs(m.GetOwnerReferences(), 0); o != nil {
			return o
		}
	}
	if len(t.s.selector) == 0 {
		return nil
	}
	labels := m.GetLabels()
	if t.s.nameLabel != "" {
		v, ok := labels[t.s.nameLabel]
		if !ok {
			return nil
		}
		return t.objects[m.GetNamespace()+"/"+v]
	}
	ns := m.GetNamespace()
	for _, o := range t.objects {
		if o.ns == ns && matches(o.selector, labels) {
			return o
		}
	}
	return nil
}

func (t *Tracker) ownerByRefs(refs []metav1.OwnerReference, depth int) *objState {
	if depth > 4 {
		return nil
	}
	for _, r := range refs {
		if o := t.byUID[r.UID]; o != nil {
			return o
		}
		if n, ok := t.owners[r.UID]; ok {
			for _, up := range n.owners {
				if o := t.byUID[up]; o != nil {
					return o
				}
				if n2, ok := t.owners[up]; ok {
					if o := t.ownerByRefs(refsOf(n2.owners), depth+1); o != nil {
						return o
					}
				}
			}
		}
	}
	return nil
}

func refsOf(uids []types.UID) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, len(uids))
	for i, u := range uids {
		out[i].UID = u
	}
	return out
}

func matches(sel []labelReq, labels map[string]string) bool {
	for _, r := range sel {
		v, ok := labels[r.key]
		if !ok || r.value != "" && v != r.value {
			return false
		}
	}
	return len(sel) > 0
}

// podReady reports whether a Pod is Ready and whether it is live (not
// being deleted).
func podReady(obj any, m metav1.Object) (ready, live bool) {
	live = m.GetDeletionTimestamp() == nil
	if p, ok := obj.(*corev1.Pod); ok {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue && live, live
			}
		}
		return false, live
	}
	v, ok := readyPath.Canonical(obj)
	return ok && v == `"True"` && live, live
}

var readyPath, _ = ParsePath("status.conditions[type=Ready].status")

func (t *Tracker) commitRelated(dst []history.Record, w int, key string, obj any, rev int64) []history.Record {
	objs := t.related[w]
	if objs == nil {
		objs = map[string]any{}
		t.related[w] = objs
	}
	var uid types.UID
	var owners []types.UID
	if obj == nil {
		prev, ok := objs[key]
		if !ok {
			return dst
		}
		delete(objs, key)
		if m, err := meta.Accessor(prev); err == nil {
			uid = m.GetUID()
			for _, r := range m.GetOwnerReferences() {
				owners = append(owners, r.UID)
			}
			delete(t.owners, uid)
		}
	} else {
		m, err := meta.Accessor(obj)
		if err != nil {
			return t.fail(dst, key, rev, fmt.Errorf("%T is not an object: %w", obj, err))
		}
		objs[key] = obj
		uid = m.GetUID()
		for _, r := range m.GetOwnerReferences() {
			owners = append(owners, r.UID)
		}
		t.owners[uid] = ownerNode{owners: owners}
	}
	// The objects whose truths may read this one: the one that owns it,
	// and those that name it.
	if !t.readsRelated(w) {
		return dst
	}
	ns, name := splitKey(key)
	done := map[*objState]bool{}
	for _, u := range owners {
		if o := t.byUID[u]; o != nil && !done[o] {
			done[o] = true
			dst = t.truths(dst, o, "", rev, false)
		}
	}
	for _, p := range t.s.props {
		if p.kind != truthObject || p.related != w || p.relName == "" {
			continue
		}
		for _, o := range t.objects {
			if o.ns == ns && !done[o] && expand(p.relName, o.ns, o.name) == name {
				done[o] = true
				dst = t.truths(dst, o, "", rev, false)
			}
		}
	}
	return dst
}

func (t *Tracker) readsRelated(w int) bool {
	for _, p := range t.s.props {
		if p.kind == truthObject && p.related == w {
			return true
		}
	}
	return false
}

func (t *Tracker) fail(dst []history.Record, key string, rev int64, err error) []history.Record {
	return append(dst, history.Record{Source: history.SourceHarness, Kind: "decode-error", Object: key, RV: rev, Err: err.Error()})
}

// InSync reports whether every object's reported values equal their
// truths right now (the harness's live view); used by tests.
func (t *Tracker) InSync() bool {
	for _, o := range t.objects {
		for i := range o.truth {
			if o.truth[i] != o.reported[i] {
				return false
			}
		}
	}
	return true
}

// funcInput is the TruthInput of a truth function.
type funcInput struct {
	t     *Tracker
	o     *objState
	upto  int
	paths map[string]*Path
	last  *Path
}

func (in *funcInput) Object() any { return in.o.obj }

func (in *funcInput) Field(path string) (any, bool) {
	var p *Path
	var ok bool
	if in.last != nil && in.last.text == path { // a function reads the same field each time
		p, ok = in.last, true
	} else {
		p, ok = in.paths[path]
	}
	if !ok {
		var err error
		if p, err = ParsePath(path); err != nil {
			return nil, false
		}
		if in.paths == nil {
			in.paths = map[string]*Path{}
		}
		in.paths[path] = p
	}
	in.last = p
	v, ok := p.Canonical(in.o.obj)
	if !ok {
		return nil, false
	}
	return decodeCanonical(v), true
}

func (in *funcInput) Truth(name string) (any, bool) {
	for j := 0; j < in.upto; j++ {
		if in.t.s.props[j].name == name {
			return decodeCanonical(in.o.truth[j]), true
		}
	}
	return nil, false
}

func (in *funcInput) ReadyPods() int { return in.o.ready }
func (in *funcInput) Pods() int      { return in.o.total }

// decodeCanonical reads a canonical JSON value back into Go: int64 for
// whole numbers, float64, string, bool, nil, maps and lists.
func decodeCanonical(s string) any {
	switch s {
	case "", "null":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if len(s) >= 2 && s[0] == '"' && !strings.ContainsAny(s[1:len(s)-1], `"\\`) {
		return s[1 : len(s)-1]
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil
	}
	return normalize(v)
}

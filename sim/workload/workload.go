package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/subject"
)

// Operation kinds.
const (
	OpCreate    = "create"
	OpScale     = "scale"
	OpAnnotate  = "annotate"
	OpPatch     = "patch"     // a JSON merge patch
	OpJSONPatch = "jsonpatch" // a JSON patch (RFC 6902)
	OpDelete    = "delete"
)

// AnnotationKey is the annotation the annotate operation patches.
const AnnotationKey = scenarios.DefaultAnnotationKey

// Op is one workload operation on an object: of the subject kind, unless
// APIVersion and ObjectKind name another.
type Op struct {
	// At is when the operation is due, from the start of the workload.
	At time.Duration `json:"at_ns"`
	// Kind is create, scale, annotate, patch, jsonpatch or delete.
	Kind string `json:"kind"`
	// Name is the object's name.
	Name string `json:"name"`
	// APIVersion and ObjectKind name another kind than the subject's.
	APIVersion string `json:"apiVersion,omitempty"`
	ObjectKind string `json:"objectKind,omitempty"`
	// Replicas is the replica count for create and scale.
	Replicas int32 `json:"replicas,omitempty"`
	// Value is the annotation value for annotate.
	Value string `json:"value,omitempty"`
	// Key is the annotation key for annotate; empty means AnnotationKey.
	Key string `json:"key,omitempty"`
	// Patch is the JSON of a patch or jsonpatch operation.
	Patch string `json:"patch,omitempty"`
	// Object is the JSON of the object a create of another kind creates
	// (its name and namespace are filled in).
	Object string `json:"object,omitempty"`
}

// AnnotationKeyOf returns the annotation key an annotate operation sets.
func (o Op) AnnotationKeyOf() string {
	if o.Key == "" {
		return AnnotationKey
	}
	return o.Key
}

// OtherKind reports whether the operation is on an object of another kind
// than the subject's.
func (o Op) OtherKind() bool { return o.ObjectKind != "" }

// String is the operation in one line: "scale kv-0 replicas=3",
// "annotate kv-1 key=value", "delete kv-2", "patch ConfigMap/settings".
// It is built in one allocation: the virtual backend records it for every
// operation.
func (o Op) String() string {
	var buf [96]byte
	b := append(buf[:0], o.Kind...)
	b = append(b, ' ')
	if o.ObjectKind != "" {
		b = append(b, o.ObjectKind...)
		b = append(b, '/')
	}
	b = append(b, o.Name...)
	switch o.Kind {
	case OpCreate, OpScale:
		if o.ObjectKind == "" {
			b = append(b, " replicas="...)
			b = strconv.AppendInt(b, int64(o.Replicas), 10)
		}
	case OpAnnotate:
		b = append(b, ' ')
		b = append(b, o.AnnotationKeyOf()...)
		b = append(b, '=')
		b = append(b, o.Value...)
	case OpPatch, OpJSONPatch:
		b = append(b, ' ')
		b = append(b, o.Patch...)
	}
	return string(b)
}

// Stream derives an independent, named random stream from a run's seed, so
// that adding draws to one part of driftlab does not shift another's. It is
// driftlab's one seed-derivation function.
func Stream(seed uint64, name string) *rand.Rand { return rand.New(streamSource(seed, name)) }

func streamSource(seed uint64, name string) *rand.PCG {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.NewPCG(seed, h.Sum64())
}

func between(r *rand.Rand, rg scenarios.IntRange) int32 {
	return int32(rg.Min + r.IntN(rg.Max-rg.Min+1))
}

// Generate returns the operations of a workload, ordered by time: its
// explicit operations when it lists some (workload.operations, for example
// imported from an audit log), else the ones drawn from the seed, on
// objects named prefix + index. It is the whole of NewOps, in a slice.
func Generate(w scenarios.Workload, seed uint64, prefix string) []Op {
	if len(w.Operations) > 0 {
		return Explicit(w.Operations)
	}
	g := NewOps(w, seed, prefix)
	ops := make([]Op, 0, g.Len())
	for op, ok := g.Next(); ok; op, ok = g.Next() {
		ops = append(ops, op)
	}
	return ops
}

// Ops yields a workload's operations one at a time, in Generate's order and
// with its values, holding only the objects' names: a simulated day of
// annotations every 200 ms is 432,000 operations, 70 MB as a slice. The
// generated operations are the objects' creates at 0, then by time the
// scales and annotations (a scale first at the same instant), then the
// deletes at the end. The draws come from one random stream in that
// order of kinds (creates, every scale, every annotation), so the
// annotations' draws start where the scales' end: NewOps runs through the
// scales' draws once to find that point.
type Ops struct {
	explicit []Op
	n        int // operations in all
	done     int
	live     []string
	creates  []Op
	end      time.Duration
	// scale and annotate: the next one's time, how many are left, and
	// the stream each draws from.
	scaleAt, scaleEvery time.Duration
	scalesLeft          int
	scaleRand           *rand.Rand
	replicas            scenarios.IntRange
	annotateAt, step    time.Duration
	annotatesLeft, nth  int
	annotateRand        *rand.Rand
	deletes             int
}

// NewOps starts the operations of w (see Ops).
func NewOps(w scenarios.Workload, seed uint64, prefix string) *Ops {
	g := &Ops{n: CountOps(w)}
	if len(w.Operations) > 0 {
		g.explicit = Explicit(w.Operations)
		return g
	}
	src := streamSource(seed, "workload")
	r := rand.New(src)
	for i := 0; i < w.Objects; i++ {
		name := prefix + strconv.Itoa(i)
		g.live = append(g.live, name)
		g.creates = append(g.creates, Op{At: 0, Kind: OpCreate, Name: name, Replicas: between(r, w.InitialReplicas)})
	}
	g.end = w.Duration.Duration
	if every := w.Scale.Every.Duration; every > 0 && len(g.live) > 0 && g.end > every {
		g.scaleEvery, g.scaleAt = every, every
		g.scalesLeft = int((g.end - 1) / every)
		g.replicas = w.Scale.Replicas
		scaleSrc := *src
		g.scaleRand = rand.New(&scaleSrc)
		for range g.scalesLeft { // to where the annotations' draws start
			r.IntN(len(g.live))
			between(r, g.replicas)
		}
	}
	if w.Annotate.Rate > 0 && len(g.live) > 0 {
		if step := time.Duration(math.Round(float64(time.Second) / w.Annotate.Rate)); step > 0 && g.end > step {
			g.step, g.annotateAt = step, step
			g.annotatesLeft = int((g.end - 1) / step)
			g.annotateRand = r
		}
	}
	g.deletes = w.DeleteObjects
	return g
}

// Len is how many operations there are in all.
func (g *Ops) Len() int { return g.n }

// NextAt is when the next operation is due, false after the last.
func (g *Ops) NextAt() (time.Duration, bool) {
	i := g.done
	switch {
	case i >= g.n:
		return 0, false
	case g.explicit != nil:
		return g.explicit[i].At, true
	case i < len(g.creates):
		return 0, true
	case g.scalesLeft > 0 && (g.annotatesLeft == 0 || g.scaleAt <= g.annotateAt):
		return g.scaleAt, true
	case g.annotatesLeft > 0:
		return g.annotateAt, true
	}
	return g.end, true
}

// Next returns the next operation, false after the last.
func (g *Ops) Next() (Op, bool) {
	i := g.done
	if i >= g.n {
		return Op{}, false
	}
	g.done++
	switch {
	case g.explicit != nil:
		return g.explicit[i], true
	case i < len(g.creates):
		return g.creates[i], true
	case g.scalesLeft > 0 && (g.annotatesLeft == 0 || g.scaleAt <= g.annotateAt):
		op := Op{At: g.scaleAt, Kind: OpScale, Name: g.live[g.scaleRand.IntN(len(g.live))], Replicas: between(g.scaleRand, g.replicas)}
		g.scaleAt += g.scaleEvery
		g.scalesLeft--
		return op, true
	case g.annotatesLeft > 0:
		g.nth++
		op := Op{At: g.annotateAt, Kind: OpAnnotate, Name: g.live[g.annotateRand.IntN(len(g.live))], Value: strconv.Itoa(g.nth)}
		g.annotateAt += g.step
		g.annotatesLeft--
		return op, true
	}
	left := g.n - i // deletes left, this one included
	return Op{At: g.end, Kind: OpDelete, Name: g.live[len(g.live)-1-(g.deletes-left)]}, true
}

// CountOps is how many operations Generate makes of w, without making
// them (so that a scenario asking for too many is refused first).
func CountOps(w scenarios.Workload) int {
	if len(w.Operations) > 0 {
		return len(w.Operations)
	}
	n := max(w.Objects, 0) + max(w.DeleteObjects, 0)
	end := w.Duration.Duration
	if every := w.Scale.Every.Duration; every > 0 && w.Objects > 0 && end > every {
		n += int((end - 1) / every)
	}
	if w.Annotate.Rate > 0 && w.Objects > 0 {
		if step := time.Duration(math.Round(float64(time.Second) / w.Annotate.Rate)); step > 0 && end > step {
			n += int((end - 1) / step)
		}
	}
	return n
}

// Explicit converts a scenario's explicit operations, keeping their order.
func Explicit(list []scenarios.Operation) []Op {
	ops := make([]Op, 0, len(list))
	for _, o := range list {
		op := Op{At: o.At.Duration, Kind: o.Op, Name: o.Name, APIVersion: o.APIVersion, ObjectKind: o.Kind, Replicas: int32(o.Replicas), Value: o.Value}
		if o.Key != AnnotationKey {
			op.Key = o.Key
		}
		switch {
		case o.Patch != nil:
			op.Patch = compactJSON(o.Patch)
		case o.JSONPatch != nil:
			op.Patch = compactJSON(o.JSONPatch)
		}
		if o.Object != nil {
			op.Object = compactJSON(o.Object)
		}
		ops = append(ops, op)
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].At < ops[j].At })
	return ops
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// Target is what the workload needs to know of the subject to act on its
// objects: kind, template and where the replica count goes.
type Target struct {
	GVK      schema.GroupVersionKind
	Template map[string]any
	// Replicas is the replica count's field path as keys (spec, replicas);
	// nil when the subject declares none.
	Replicas []string
}

// NewTarget makes the workload's target from a compiled subject.
func NewTarget(s *subject.Subject) (*Target, error) {
	t := &Target{GVK: s.GVK, Template: s.Spec.Template}
	if p := s.Spec.Replicas; p != "" {
		for _, k := range strings.Split(p, ".") {
			if k == "" || strings.ContainsAny(k, "[]\"") {
				return nil, fmt.Errorf("subject.replicas %q: the workload sets it with a merge patch: use plain field names (spec.replicas)", p)
			}
			t.Replicas = append(t.Replicas, k)
		}
	}
	return t, nil
}

// Apply performs one operation through c in namespace ns.
func Apply(ctx context.Context, c client.Client, t *Target, ns string, op Op) error {
	u := &unstructured.Unstructured{}
	gvk := t.GVK
	if op.OtherKind() {
		gv, err := schema.ParseGroupVersion(op.APIVersion)
		if err != nil {
			return fmt.Errorf("workload: operation on %s/%s: %w", op.ObjectKind, op.Name, err)
		}
		gvk = gv.WithKind(op.ObjectKind)
	}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(op.Name)
	switch op.Kind {
	case OpCreate:
		obj, err := t.object(op)
		if err != nil {
			return err
		}
		obj.SetGroupVersionKind(gvk)
		obj.SetNamespace(ns)
		obj.SetName(op.Name)
		return c.Create(ctx, obj)
	case OpScale, OpAnnotate, OpPatch:
		data, err := t.MergePatch(op)
		if err != nil {
			return err
		}
		return c.Patch(ctx, u, client.RawPatch(types.MergePatchType, data))
	case OpJSONPatch:
		return c.Patch(ctx, u, client.RawPatch(types.JSONPatchType, []byte(op.Patch)))
	case OpDelete:
		return c.Delete(ctx, u)
	}
	return fmt.Errorf("workload: unknown operation %q on %s/%s", op.Kind, ns, op.Name)
}

// object is the object a create operation sends: the template (or the
// operation's object) with the replica count set.
func (t *Target) object(op Op) (*unstructured.Unstructured, error) {
	var m map[string]any
	if op.Object != "" {
		if err := json.Unmarshal([]byte(op.Object), &m); err != nil {
			return nil, fmt.Errorf("workload: create %s: object: %w", op.Name, err)
		}
	} else {
		m = runtime.DeepCopyJSON(jsonCompatible(t.Template))
	}
	if m == nil {
		m = map[string]any{}
	}
	fillName(m, op.Name)
	u := &unstructured.Unstructured{Object: m}
	if !op.OtherKind() && t.Replicas != nil {
		if err := unstructured.SetNestedField(u.Object, int64(op.Replicas), t.Replicas...); err != nil {
			return nil, fmt.Errorf("workload: create %s: setting %s: %w", op.Name, strings.Join(t.Replicas, "."), err)
		}
	}
	return u, nil
}

// fillName replaces {{name}} in every string of an object with the
// object's name (a label its Pods carry, a selector).
func fillName(v any, name string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				x[k] = strings.ReplaceAll(s, "{{name}}", name)
				continue
			}
			fillName(e, name)
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				x[i] = strings.ReplaceAll(s, "{{name}}", name)
				continue
			}
			fillName(e, name)
		}
	}
}

// jsonCompatible converts a template decoded from YAML or written in Go
// (ints, nested map[string]any) to what runtime.DeepCopyJSON accepts.
func jsonCompatible(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return map[string]any{}
	}
	out := map[string]any{}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	_ = dec.Decode(&out)
	return numbers(out).(map[string]any)
}

func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// MergePatch is the JSON merge patch of a scale, annotate or patch
// operation: what kube-apiserver receives.
func (t *Target) MergePatch(op Op) ([]byte, error) {
	switch op.Kind {
	case OpScale:
		if t.Replicas == nil {
			return nil, fmt.Errorf("workload: scale %s: the subject declares no replicas field", op.Name)
		}
		patch := make([]byte, 0, 32)
		for _, k := range t.Replicas {
			key, _ := json.Marshal(k)
			patch = append(append(append(patch, '{'), key...), ':')
		}
		patch = strconv.AppendInt(patch, int64(op.Replicas), 10)
		for range t.Replicas {
			patch = append(patch, '}')
		}
		return patch, nil
	case OpAnnotate:
		// JSON strings, not Go's %q: that writes control characters
		// and invalid UTF-8 as \x escapes, which are not JSON.
		key, err := json.Marshal(op.AnnotationKeyOf())
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(op.Value)
		if err != nil {
			return nil, err
		}
		patch := make([]byte, 0, 32+len(key)+len(value))
		patch = append(patch, `{"metadata":{"annotations":{`...)
		patch = append(patch, key...)
		patch = append(patch, ':')
		patch = append(patch, value...)
		return append(patch, "}}}"...), nil
	case OpPatch:
		return []byte(op.Patch), nil
	}
	return nil, fmt.Errorf("workload: operation %q is not a merge patch", op.Kind)
}

// Run applies ops in order, each at start+op.At (or as soon as the one
// before it is done, when running late), and returns at start+end (the
// workload's duration) or after the last operation, whichever is later.
// done is called after each one. It stops early when ctx is done.
func Run(ctx context.Context, c client.Client, t *Target, ns string, ops []Op, start time.Time, end time.Duration, done func(Op, error)) error {
	wait := func(d time.Duration) error {
		if d <= 0 {
			return nil
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tm.C:
			return nil
		}
	}
	for _, op := range ops {
		if err := wait(time.Until(start.Add(op.At))); err != nil {
			return err
		}
		err := Apply(ctx, c, t, ns, op)
		done(op, err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return wait(time.Until(start.Add(end)))
}

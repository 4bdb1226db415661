package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/scenarios"
)

// Operation kinds.
const (
	OpCreate   = "create"
	OpScale    = "scale"
	OpAnnotate = "annotate"
	OpDelete   = "delete"
)

// AnnotationKey is the annotation the annotate operation patches.
const AnnotationKey = scenarios.DefaultAnnotationKey

// Op is one workload operation.
type Op struct {
	// At is when the operation is due, from the start of the workload.
	At time.Duration `json:"at_ns"`
	// Kind is create, scale, annotate or delete.
	Kind string `json:"kind"`
	// Cluster is the KVCluster's name.
	Cluster string `json:"cluster"`
	// Replicas is spec.replicas for create and scale.
	Replicas int32 `json:"replicas,omitempty"`
	// Value is the annotation value for annotate.
	Value string `json:"value,omitempty"`
	// Key is the annotation key for annotate; empty means AnnotationKey.
	Key string `json:"key,omitempty"`
}

// AnnotationKeyOf returns the annotation key an annotate operation sets.
func (o Op) AnnotationKeyOf() string {
	if o.Key == "" {
		return AnnotationKey
	}
	return o.Key
}

// String is the operation in one line: "scale kv-0 replicas=3",
// "annotate kv-1 key=value", "delete kv-2". It is built in one
// allocation: the virtual backend records it for every operation.
func (o Op) String() string {
	var buf [96]byte
	b := append(buf[:0], o.Kind...)
	b = append(b, ' ')
	b = append(b, o.Cluster...)
	switch o.Kind {
	case OpCreate, OpScale:
		b = append(b, " replicas="...)
		b = strconv.AppendInt(b, int64(o.Replicas), 10)
	case OpAnnotate:
		b = append(b, ' ')
		b = append(b, o.AnnotationKeyOf()...)
		b = append(b, '=')
		b = append(b, o.Value...)
	}
	return string(b)
}

// Stream derives an independent, named random stream from a run's seed, so
// that adding draws to one part of driftlab does not shift another's.
func Stream(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

func between(r *rand.Rand, rg scenarios.IntRange) int32 {
	return int32(rg.Min + r.IntN(rg.Max-rg.Min+1))
}

// ClusterName is the name of the i-th cluster of a workload.
func ClusterName(i int) string { return "kv-" + strconv.Itoa(i) }

// Generate returns the operations of a workload, ordered by time: its
// explicit operations when it lists some (workload.operations, for example
// imported from an audit log), else the ones drawn from the seed.
func Generate(w scenarios.Workload, seed uint64) []Op {
	if len(w.Operations) > 0 {
		return Explicit(w.Operations)
	}
	r := Stream(seed, "workload")
	ops := make([]Op, 0, countOps(w))
	live := make([]string, 0, w.Clusters)
	for i := 0; i < w.Clusters; i++ {
		name := ClusterName(i)
		live = append(live, name)
		ops = append(ops, Op{At: 0, Kind: OpCreate, Cluster: name, Replicas: between(r, w.InitialReplicas)})
	}
	end := w.Duration.Duration
	if every := w.Scale.Every.Duration; every > 0 && len(live) > 0 {
		for t := every; t < end; t += every {
			ops = append(ops, Op{At: t, Kind: OpScale, Cluster: live[r.IntN(len(live))], Replicas: between(r, w.Scale.Replicas)})
		}
	}
	if w.Annotate.Rate > 0 && len(live) > 0 {
		step := time.Duration(math.Round(float64(time.Second) / w.Annotate.Rate))
		n := 0
		for t := step; t < end; t += step {
			n++
			ops = append(ops, Op{At: t, Kind: OpAnnotate, Cluster: live[r.IntN(len(live))], Value: strconv.Itoa(n)})
		}
	}
	// Delete the last clusters at the end of the workload.
	for i := 0; i < w.DeleteClusters; i++ {
		ops = append(ops, Op{At: end, Kind: OpDelete, Cluster: live[len(live)-1-i]})
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].At < ops[j].At })
	return ops
}

// countOps is how many operations Generate draws for w, so that it
// allocates their slice once.
func countOps(w scenarios.Workload) int {
	n := max(w.Clusters, 0) + max(w.DeleteClusters, 0)
	end := w.Duration.Duration
	if every := w.Scale.Every.Duration; every > 0 && w.Clusters > 0 && end > every {
		n += int((end - 1) / every)
	}
	if w.Annotate.Rate > 0 && w.Clusters > 0 {
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
		op := Op{At: o.At.Duration, Kind: o.Op, Cluster: o.Cluster, Replicas: int32(o.Replicas), Value: o.Value}
		if o.Key != AnnotationKey {
			op.Key = o.Key
		}
		ops = append(ops, op)
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].At < ops[j].At })
	return ops
}

// Apply performs one operation through c in namespace ns.
//
// The KVCluster it sends is pooled: clients do not keep the object they
// are passed (they copy it, and answer into it), and Apply drops it.
func Apply(ctx context.Context, c client.Client, ns string, op Op) error {
	nn := types.NamespacedName{Namespace: ns, Name: op.Cluster}
	kv := clusterPool.Get().(*kvv1.KVCluster)
	defer func() {
		*kv = kvv1.KVCluster{}
		clusterPool.Put(kv)
	}()
	kv.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: op.Cluster}
	switch op.Kind {
	case OpCreate:
		kv.Spec.Replicas = op.Replicas
		return c.Create(ctx, kv)
	case OpScale, OpAnnotate:
		return c.Patch(ctx, kv, NewPatch(op))
	case OpDelete:
		return c.Delete(ctx, kv)
	}
	return fmt.Errorf("workload: unknown operation %q on %s", op.Kind, nn)
}

// Patch is the JSON merge patch of a scale or an annotate operation. Data
// is its JSON, what kube-apiserver receives; MergeInto applies it to a
// KVCluster directly, with the object the JSON merge patch gives (the
// virtual backend's TestWorkloadPatchMatchesJSON), for a client that models
// the apiserver in process and would otherwise decode the JSON again.
type Patch struct{ op Op }

// NewPatch is the patch of a scale or annotate operation.
func NewPatch(op Op) *Patch { return &Patch{op: op} }

// Type is types.MergePatchType.
func (p *Patch) Type() types.PatchType { return types.MergePatchType }

// Data is the patch's JSON: {"spec":{"replicas":N}} or
// {"metadata":{"annotations":{KEY:VALUE}}}.
func (p *Patch) Data(client.Object) ([]byte, error) {
	op := p.op
	switch op.Kind {
	case OpScale:
		patch := make([]byte, 0, 32)
		patch = append(patch, `{"spec":{"replicas":`...)
		patch = strconv.AppendInt(patch, int64(op.Replicas), 10)
		return append(patch, "}}"...), nil
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
	}
	return nil, fmt.Errorf("workload: operation %q is not a patch", op.Kind)
}

// MergeInto applies the patch to kv. It never writes into a map kv
// shares: the annotations are cloned before they change, so kv may be a
// shallow copy of an object that must not change.
func (p *Patch) MergeInto(kv *kvv1.KVCluster) {
	switch p.op.Kind {
	case OpScale:
		kv.Spec.Replicas = p.op.Replicas
	case OpAnnotate:
		a := make(map[string]string, len(kv.Annotations)+1)
		maps.Copy(a, kv.Annotations)
		a[asJSON(p.op.AnnotationKeyOf())] = asJSON(p.op.Value)
		kv.Annotations = a
	}
}

// asJSON is s as a JSON round trip leaves it: each invalid UTF-8 byte
// becomes U+FFFD, as it does in Data.
func asJSON(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b, _ := json.Marshal(s)
	var out string // not s: taking its address would move every s to the heap
	_ = json.Unmarshal(b, &out)
	return out
}

var clusterPool = sync.Pool{New: func() any { return new(kvv1.KVCluster) }}

// Run applies ops in order, each at start+op.At (or as soon as the one
// before it is done, when running late). done is called after each one.
// It stops early when ctx is done.
func Run(ctx context.Context, c client.Client, ns string, ops []Op, start time.Time, done func(Op, error)) error {
	for _, op := range ops {
		if wait := time.Until(start.Add(op.At)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		err := Apply(ctx, c, ns, op)
		done(op, err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

package virtual

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/sim/workload"
)

// applyOp performs one workload operation on the model's KVClusters: what
// workload.Apply does on a real apiserver, with typed objects, so that the
// model neither encodes nor decodes them. The model has the reference
// operator's kind only: an operation on another kind is refused.
//
// The KVCluster it sends is pooled: clients do not keep the object they
// are passed (they copy it, and answer into it), and applyOp drops it.
func applyOp(ctx context.Context, c client.Client, ns string, op workload.Op) error {
	if op.OtherKind() {
		return fmt.Errorf("virtual: %s: the virtual backend models KVClusters and Pods only", op)
	}
	kv := clusterPool.Get().(*kvv1.KVCluster)
	defer func() {
		*kv = kvv1.KVCluster{}
		clusterPool.Put(kv)
	}()
	kv.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: op.Name}
	switch op.Kind {
	case workload.OpCreate:
		kv.Spec.Replicas = op.Replicas
		return c.Create(ctx, kv)
	case workload.OpScale, workload.OpAnnotate:
		return c.Patch(ctx, kv, &kvPatch{op: op})
	case workload.OpPatch:
		return c.Patch(ctx, kv, client.RawPatch(types.MergePatchType, []byte(op.Patch)))
	case workload.OpDelete:
		return c.Delete(ctx, kv)
	}
	return fmt.Errorf("virtual: %s: not modelled (merge patches and PUTs only)", op)
}

var clusterPool = sync.Pool{New: func() any { return new(kvv1.KVCluster) }}

// kvPatch is the JSON merge patch of a scale or an annotate operation.
// Data is its JSON, what kube-apiserver receives (workload.Target's);
// MergeInto applies it to a KVCluster directly, with the object the JSON
// merge patch gives (TestWorkloadPatchMatchesJSON), so that the store does
// not decode the JSON again.
type kvPatch struct{ op workload.Op }

// kvTarget is the workload target of the reference operator's kind.
var kvTarget = &workload.Target{Replicas: []string{"spec", "replicas"}}

// Type is types.MergePatchType.
func (p *kvPatch) Type() types.PatchType { return types.MergePatchType }

// Data is the patch's JSON: {"spec":{"replicas":N}} or
// {"metadata":{"annotations":{KEY:VALUE}}}.
func (p *kvPatch) Data(client.Object) ([]byte, error) { return kvTarget.MergePatch(p.op) }

// MergeInto applies the patch to kv. It never writes into a map kv
// shares: the annotations are cloned before they change, so kv may be a
// shallow copy of an object that must not change.
func (p *kvPatch) MergeInto(kv *kvv1.KVCluster) {
	switch p.op.Kind {
	case workload.OpScale:
		kv.Spec.Replicas = p.op.Replicas
	case workload.OpAnnotate:
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

package virtual

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsjson "sigs.k8s.io/json"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
	"github.com/driftlab/driftlab/sim/workload"
)

// TestMergePatchIntoMatchesRFC7386 checks the typed merge against the
// reference: encode, evanphx/json-patch MergePatch, decode (case-sensitively,
// as kube-apiserver does).
func TestMergePatchIntoMatchesRFC7386(t *testing.T) {
	ts := metav1.NewTime(Epoch.Add(3 * time.Second))
	base := &kvv1.KVCluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: "kv.driftlab.io/v1alpha1", Kind: "KVCluster"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kv-0", ResourceVersion: "7", Generation: 2, Annotations: map[string]string{"a": "1", "b": "2"}, CreationTimestamp: ts},
		Spec:       kvv1.KVClusterSpec{Replicas: 3},
		Status: kvv1.KVClusterStatus{ReadyReplicas: 1, ObservedGeneration: 1, Conditions: []metav1.Condition{
			{Type: kvv1.ConditionReady, Status: metav1.ConditionFalse, Reason: "MembersNotReady", Message: "1/3", LastTransitionTime: ts, ObservedGeneration: 1},
		}},
	}
	status := base.DeepCopy()
	status.Status.ReadyReplicas = 3
	status.Status.ObservedGeneration = 2
	meta.SetStatusCondition(&status.Status.Conditions, metav1.Condition{Type: kvv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "AllMembersReady", Message: "3/3", ObservedGeneration: 2})
	mergeFrom, err := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}).Data(status)
	if err != nil {
		t.Fatal(err)
	}
	noAnn := base.DeepCopy()
	noAnn.Annotations = nil
	dropAnn, err := client.MergeFrom(base).Data(noAnn)
	if err != nil {
		t.Fatal(err)
	}
	for _, patch := range []string{
		`{"spec":{"replicas":5}}`,
		`{"spec":{"replicas":0}}`,
		`{"metadata":{"annotations":{"driftlab.io/tick":"9"}}}`,
		`{"metadata":{"annotations":{"a":null,"c":"3"}}}`,
		`{"metadata":{"labels":{"x":"y"}},"status":{"conditions":[]}}`,
		`{"status":null}`,
		`{"metadata":{"resourceVersion":"6"}}`,
		`{"unknown":{"x":1}}`,
		` { "metadata" : { "annotations" : { "we\"ird\\key" : "va}l,ue\"]" , "b" : null } } , "spec" : { "replicas" : 4 } } `,
		`{"metadata":{"annotations":{"a":"x"},"annotations":{"b":"y"}}}`,
		`{"metadata":{"labels":{"k":"[{\"}"}},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:05Z","reason":"R","message":"m{]"}]}}`,
		string(mergeFrom),
		string(dropAnn),
	} {
		orig, _ := json.Marshal(base)
		merged, err := jsonpatch.MergePatch(orig, []byte(patch))
		if err != nil {
			t.Fatalf("%s: %v", patch, err)
		}
		want := &kvv1.KVCluster{}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(merged, want); err != nil {
			t.Fatal(err)
		}
		got := base.DeepCopy()
		if err := mergePatchInto(got, []byte(patch)); err != nil {
			t.Fatalf("%s: %v", patch, err)
		}
		if !equality.Semantic.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("patch %s:\n got %s\nwant %s", patch, g, w)
		}
		checkShallowMerge(t, base, patch, want)
	}
	// Pods: status replaced by the kubelet-like patch.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"k": "v"}}}
	patch := `{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]},"metadata":{"labels":{"k":null}}}`
	orig, _ := json.Marshal(pod)
	merged, _ := jsonpatch.MergePatch(orig, []byte(patch))
	want := &corev1.Pod{}
	_ = json.Unmarshal(merged, want)
	got := pod.DeepCopy()
	if err := mergePatchInto(got, []byte(patch)); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("pod patch: got %+v want %+v", got, want)
	}
	// Pointers, maps and nested pointers of a shallow copy.
	grace, user := int64(30), int64(1000)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &user}
	pod.Spec.NodeSelector = map[string]string{"zone": "a"}
	for _, patch := range []string{
		`{"spec":{"terminationGracePeriodSeconds":7}}`,
		`{"spec":{"securityContext":{"runAsUser":5,"runAsGroup":6}}}`,
		`{"spec":{"nodeSelector":{"zone":"b","disk":"ssd"}},"metadata":{"labels":{"k":"w"}}}`,
		`{"spec":{"terminationGracePeriodSeconds":null,"securityContext":null}}`,
		`{"metadata":{"deletionTimestamp":"2026-01-01T00:00:05Z","deletionGracePeriodSeconds":0}}`,
	} {
		orig, _ := json.Marshal(pod)
		merged, _ := jsonpatch.MergePatch(orig, []byte(patch))
		want := &corev1.Pod{}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(merged, want); err != nil {
			t.Fatal(err)
		}
		checkShallowMerge(t, pod, patch, want)
	}
}

// checkShallowMerge: merging into a shallow copy of base gives want and
// leaves base (which shares its maps and pointers) unchanged, as the
// store needs (it patches shallow copies of its immutable objects).
func checkShallowMerge[T any, P interface {
	*T
	client.Object
}](t testing.TB, base P, patch string, want P) {
	t.Helper()
	pristine := base.DeepCopyObject()
	shallow := P(new(T))
	*shallow = *base
	if err := mergePatchInto(shallow, []byte(patch)); err != nil {
		t.Fatalf("shallow %s: %v", patch, err)
	}
	if !equality.Semantic.DeepEqual(shallow, want) {
		g, _ := json.Marshal(shallow)
		w, _ := json.Marshal(want)
		t.Errorf("shallow patch %s:\n got %s\nwant %s", patch, g, w)
	}
	if !equality.Semantic.DeepEqual(base, pristine) {
		t.Errorf("patch %s changed the object a shallow copy was made of", patch)
	}
}

// FuzzMergePatchInto compares the typed merge with the reference on
// arbitrary patches: when both accept a patch, the results must agree.
func FuzzMergePatchInto(f *testing.F) {
	for _, p := range []string{
		`{"spec":{"replicas":5}}`,
		`{"metadata":{"annotations":{"a":null,"c":"3"}}}`,
		`{"metadata":{"labels":{"x":"y"}},"status":{"conditions":[]}}`,
		`{"status":{"readyReplicas":2,"conditions":[{"type":"Ready","status":"True"}]}}`,
		`{"metadata":{"ownerReferences":[{"name":"o","uid":"u","kind":"K","apiVersion":"v1"}]}}`,
		`{"metadata":{"00aaaa":{"0":"0"}},"stAtus":{"Conditions":[]}}`, // field names are case-sensitive
	} {
		f.Add(p)
	}
	base := &kvv1.KVCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kv-0", ResourceVersion: "7", Annotations: map[string]string{"a": "1"}, Labels: map[string]string{"l": "v"}},
		Spec:       kvv1.KVClusterSpec{Replicas: 3},
		Status:     kvv1.KVClusterStatus{ReadyReplicas: 1, Conditions: []metav1.Condition{{Type: "Ready", Status: "False"}}},
	}
	orig, _ := json.Marshal(base)
	f.Fuzz(func(t *testing.T, patch string) {
		merged, err := jsonpatch.MergePatch(orig, []byte(patch))
		if err != nil {
			return
		}
		want := &kvv1.KVCluster{}
		if sigsjson.UnmarshalCaseSensitivePreserveInts(merged, want) != nil {
			return
		}
		got := base.DeepCopy()
		if err := mergePatchInto(got, []byte(patch)); err != nil {
			return // stricter than the reference on ill-typed patches is fine
		}
		if !equality.Semantic.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Fatalf("patch %s:\n got %s\nwant %s", patch, g, w)
		}
		checkShallowMerge(t, base, patch, want)
	})
}

// validJSONCorpus are inputs on both sides of json.Valid's line.
var validJSONCorpus = []string{
	``, ` `, `{}`, ` { } `, `[]`, `[1,2]`, `[1,]`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":}`,
	`"x"`, `"\u00e9"`, `"\u00g9"`, `"\q"`, `"a\"b"`, `"tab	x"`, "\"ctl\x01\"", "\"\xff\xfe\"", `"unterminated`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e`, `1e-`, `-1.5e-3`, `+1`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `nulll`, `{"a":[true,false,null,{"b":"c"}]}`,
	`{"metadata":{"annotations":{"k":"v"}}}`, `{"spec":{"replicas":3}}`, `{"spec":{"replicas":3}}}`,
	`{"a":1}{"b":2}`, `[[[[]]]]`, `[[[[]]]`, "{\"a\":\n1\r\n}", `{"a":1 , "b" : [ 1 , 2 ] }`,
}

// TestValidJSONMatchesEncodingJSON: the patch check accepts exactly what
// json.Valid accepts, on the corpus and on every one-byte change of it.
func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	check := func(in []byte) {
		if got, want := validJSON(in), json.Valid(in); got != want {
			t.Errorf("validJSON(%q) = %v, json.Valid says %v", in, got, want)
		}
	}
	for _, s := range validJSONCorpus {
		check([]byte(s))
		for i := range len(s) {
			for _, c := range []byte("{}[]\",:0-1.eE+tfn\\u \x01") {
				b := []byte(s)
				b[i] = c
				check(b)
			}
			check([]byte(s[:i] + s[i+1:]))
		}
	}
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	check([]byte(deep))
	check([]byte(deep[1 : len(deep)-1]))
}

// FuzzValidJSON compares validJSON with json.Valid on any input
// (`go test ./operator/virtual -fuzz FuzzValidJSON`).
func FuzzValidJSON(f *testing.F) {
	for _, s := range validJSONCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := validJSON(in), json.Valid(in); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", in, got, want)
		}
	})
}

// TestWorkloadPatchMatchesJSON: a workload patch applied directly
// (workload.Patch.MergeInto, the store's patchCluster) gives the object its
// JSON gives through mergePatchInto, and leaves the object it was copied
// from unchanged.
func TestWorkloadPatchMatchesJSON(t *testing.T) {
	objs := []kvv1.KVCluster{
		{ObjectMeta: metav1.ObjectMeta{Name: "kv-0", ResourceVersion: "7"}, Spec: kvv1.KVClusterSpec{Replicas: 3}},
		{ObjectMeta: metav1.ObjectMeta{Name: "kv-1", ResourceVersion: "8", Annotations: map[string]string{"a": "1", workload.AnnotationKey: "old"}}, Spec: kvv1.KVClusterSpec{Replicas: 1}},
		{ObjectMeta: metav1.ObjectMeta{Name: "kv-2", Annotations: map[string]string{}}},
	}
	ops := []workload.Op{
		{Kind: workload.OpScale, Replicas: 0},
		{Kind: workload.OpScale, Replicas: 5},
		{Kind: workload.OpAnnotate, Value: "42"},
		{Kind: workload.OpAnnotate, Value: ""},
		{Kind: workload.OpAnnotate, Key: "a", Value: "x\"y\\z\u00e9\u2028\n"},
		{Kind: workload.OpAnnotate, Key: "example.com/ünïcode key", Value: "\x01\x7f"},
		{Kind: workload.OpAnnotate, Key: "bad\xffutf8", Value: "\xc3(\xff\xfe ok"},
	}
	for _, o := range objs {
		for _, op := range ops {
			p := &kvPatch{op: op}
			data, err := p.Data(nil)
			if err != nil {
				t.Fatal(err)
			}
			before := o.DeepCopy()
			viaJSON := o // shallow: mergePatchInto copies what it changes
			if err := mergePatchInto(&viaJSON, data); err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			direct := o
			p.MergeInto(&direct)
			if !equality.Semantic.DeepEqual(&viaJSON, &direct) {
				t.Errorf("%s on %s: JSON gives %+v, MergeInto %+v", data, o.Name, viaJSON.ObjectMeta, direct.ObjectMeta)
			}
			if !equality.Semantic.DeepEqual(before, &o) {
				t.Errorf("%s changed the object it was applied to a copy of: %+v", data, o.ObjectMeta)
			}
		}
	}
}

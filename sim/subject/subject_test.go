package subject

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/driftlab/driftlab/sim/history"
)

func TestPathsReadTypedAndUnstructuredAlike(t *testing.T) {
	now := metav1.Now()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 3, Annotations: map[string]string{"example.com/x": "y"}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(2)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}},
		Status: appsv1.DeploymentStatus{AvailableReplicas: 2, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, LastUpdateTime: now},
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, LastUpdateTime: now},
		}},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	for _, c := range []struct {
		path, want string
		ok         bool
	}{
		{"metadata.generation", "3", true},
		{"spec.replicas", "2", true},
		{"status.availableReplicas", "2", true},
		{"status.readyReplicas", "", false}, // 0 with omitempty: not in the object the API serves
		{"status.conditions[type=Available].status", `"False"`, true},
		{"status.conditions[type=Progressing].status", `"True"`, true},
		{"status.conditions[type=Missing].status", "", false},
		{"status.conditions[1].type", `"Available"`, true},
		{`metadata.annotations["example.com/x"]`, `"y"`, true},
		{"spec.template.spec.containers[0].image", `"nginx"`, true},
		{"spec.template.spec.containers[5].image", "", false},
		{"spec.nothing", "", false},
	} {
		p, err := ParsePath(c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		for name, obj := range map[string]any{"typed": d, "unstructured": u} {
			got, ok := p.Canonical(obj)
			if ok != c.ok || got != c.want {
				t.Errorf("%s on %s: %q %v, want %q %v", c.path, name, got, ok, c.want, c.ok)
			}
		}
	}
	// A whole struct is compared as the JSON the API writes.
	p, _ := ParsePath("status.conditions[type=Available]")
	a, _ := p.Canonical(d)
	b, _ := p.Canonical(u)
	if a != b || !strings.Contains(a, `"status":"False"`) {
		t.Errorf("conditions differ: typed %s, unstructured %s", a, b)
	}
}

func TestBadPathsAreRefused(t *testing.T) {
	for _, p := range []string{"", ".a", "a.", "a..b", "a[", "a[x=]", "a[-1]", "a b", `a["x`, "a.[0]"} {
		if _, err := ParsePath(p); err == nil {
			t.Errorf("%q parsed", p)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// webapp is a subject like the tutorial's: Pods owned through a
// Deployment, its availability and a condition from CEL.
func webapp(t *testing.T) *Subject {
	t.Helper()
	s, err := Compile(Spec{
		APIVersion: "example.com/v1", Kind: "WebApp", Pods: PodSelection{Owned: true},
		Properties: []Property{
			{Name: "available", Reported: "status.availableReplicas", Default: "0", Truth: Truth{ReadyPods: true}, Latency: LatencyIncreases},
			{Name: "observed", Reported: "status.observedGeneration", Truth: Truth{Field: "metadata.generation"}, Latency: LatencyOff},
			{Name: "ready", Reported: "status.conditions[type=Ready].status",
				Truth: Truth{CEL: `truth.available == object.spec.replicas ? "True" : "False"`}, Latency: LatencyOff},
			{Name: "deployment", Reported: "status.deploymentAvailable", Default: "0",
				Truth: Truth{Object: &RelatedField{APIVersion: "apps/v1", Kind: "Deployment", Name: "{{name}}-web", Field: "status.availableReplicas", Default: "0"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func obj(name string, uid types.UID, gen int64, replicas int64, status map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "WebApp",
		"metadata": map[string]any{"name": name, "namespace": "ns", "uid": string(uid), "generation": gen},
		"spec":     map[string]any{"replicas": replicas}}}
	if status != nil {
		u.Object["status"] = status
	}
	return u
}

func ownedPod(name string, owner types.UID, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, OwnerReferences: []metav1.OwnerReference{{UID: owner, Controller: ptr(true)}}}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func props(recs []history.Record, kind string) map[string]string {
	out := map[string]string{}
	for _, r := range recs {
		if r.Kind == kind {
			for _, p := range r.Props {
				out[p.Name] = p.Value
			}
		}
	}
	return out
}

func kindsOf(recs []history.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Kind)
	}
	return out
}

func TestTrackerFollowsOwnedPodsAndRelatedObjects(t *testing.T) {
	s := webapp(t)
	w := s.Watched()
	if w[0].Role != RoleSubject || w[1].Role != RolePods || len(w) < 3 {
		t.Fatalf("watched %+v", w)
	}
	deployments := -1
	for i, x := range w {
		if x.GVK.Kind == "Deployment" {
			deployments = i
		}
	}
	replicaSets := -1
	for i, x := range w {
		if x.GVK.Kind == "ReplicaSet" {
			replicaSets = i
		}
	}
	tr := NewTracker(s)
	recs := tr.Commit(nil, 0, "ns/a", obj("a", "uid-a", 1, 2, nil), 1)
	if got := strings.Join(kindsOf(recs), ","); got != "object-created,truth,reported" {
		t.Fatalf("create: %s", got)
	}
	// Missing counts read as their default, 0; the rest as missing.
	if got := props(recs, history.KindReported); len(got) != 2 || got["available"] != "0" || got["deployment"] != "0" {
		t.Fatalf("reported defaults %v", got)
	}
	if got := props(recs, history.KindTruth); got["available"] != "0" || got["observed"] != "1" || got["ready"] != `"False"` || got["deployment"] != "0" {
		t.Fatalf("first truths %v", got)
	}
	// A Deployment the object owns, a ReplicaSet it owns, a Pod of that.
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a-web", UID: "uid-d", OwnerReferences: []metav1.OwnerReference{{UID: "uid-a"}}}}
	tr.Commit(nil, deployments, "ns/a-web", dep, 2)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a-web-1", UID: "uid-rs", OwnerReferences: []metav1.OwnerReference{{UID: "uid-d"}}}}
	tr.Commit(nil, replicaSets, "ns/a-web-1", rs, 3)
	recs = tr.Commit(nil, 1, "ns/a-web-1-x", ownedPod("a-web-1-x", "uid-rs", false), 4)
	if got := strings.Join(kindsOf(recs), ","); got != "pod-created" {
		t.Fatalf("pod through the owner chain: %s", got)
	}
	recs = tr.Commit(nil, 1, "ns/a-web-1-x", ownedPod("a-web-1-x", "uid-rs", true), 5)
	if got := props(recs, history.KindTruth); got["available"] != "1" || len(got) != 1 {
		t.Fatalf("a Pod became Ready: truths %v", got)
	}
	if recs[len(recs)-1].Pod != "ns/a-web-1-x" {
		t.Fatalf("the truth record names no Pod: %+v", recs[len(recs)-1])
	}
	recs = tr.Commit(nil, 1, "ns/a-web-1-y", ownedPod("a-web-1-y", "uid-a", true), 6) // owned directly
	if got := props(recs, history.KindTruth); got["available"] != "2" || got["ready"] != `"True"` {
		t.Fatalf("second Ready Pod: truths %v", got)
	}
	// The related Deployment's status is a truth.
	dep2 := dep.DeepCopy()
	dep2.Status.AvailableReplicas = 2
	recs = tr.Commit(nil, deployments, "ns/a-web", dep2, 7)
	if got := props(recs, history.KindTruth); got["deployment"] != "2" {
		t.Fatalf("Deployment status: truths %v", got)
	}
	// The operator reports; only what changed is recorded.
	status := map[string]any{"availableReplicas": int64(2), "observedGeneration": int64(1),
		"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}
	recs = tr.Commit(nil, 0, "ns/a", obj("a", "uid-a", 1, 2, status), 8)
	if got := props(recs, history.KindReported); got["available"] != "2" || got["observed"] != "1" || got["ready"] != `"True"` || len(got) != 3 {
		t.Fatalf("reported %v", got)
	}
	if tr.InSync() {
		t.Fatal("in sync although deploymentAvailable is not reported")
	}
	status["deploymentAvailable"] = int64(2)
	tr.Commit(nil, 0, "ns/a", obj("a", "uid-a", 1, 2, status), 9)
	if !tr.InSync() {
		t.Fatal("not in sync although every reported value equals its truth")
	}
	// A Pod deleted; the object deleted.
	recs = tr.Commit(nil, 1, "ns/a-web-1-y", nil, 10)
	if got := props(recs, history.KindTruth); got["available"] != "1" || got["ready"] != `"False"` {
		t.Fatalf("Pod deleted: %v (%v)", got, kindsOf(recs))
	}
	recs = tr.Commit(nil, 0, "ns/a", nil, 11)
	if got := strings.Join(kindsOf(recs), ","); got != "object-deleted" {
		t.Fatalf("delete: %s", got)
	}
	if tr.Errors() != 0 {
		t.Fatalf("%d truth errors", tr.Errors())
	}
}

func TestTrackerSelectsPodsByLabel(t *testing.T) {
	s, err := Compile(Spec{APIVersion: "kv.example.com/v1", Kind: "Store", Pods: PodSelection{Selector: map[string]string{"app": "{{name}}"}},
		Properties: []Property{{Name: "ready", Reported: "status.ready", Truth: Truth{ReadyPods: true}}, {Name: "pods", Reported: "status.pods", Truth: Truth{Pods: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	if s.NameLabel() != "app" || strings.Join(s.PodLabelKeys(), ",") != "app" {
		t.Fatalf("name label %q, keys %v", s.NameLabel(), s.PodLabelKeys())
	}
	tr := NewTracker(s)
	pod := func(name, app string, ready, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"app": app}}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		if deleting {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}
	// A Pod before its object (the object created again under its name):
	// adopted when the object comes.
	tr.Commit(nil, 1, "ns/s-old", pod("s-old", "s", true, false), 1)
	store := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kv.example.com/v1", "kind": "Store", "metadata": map[string]any{"name": "s", "namespace": "ns", "uid": "u1"}}}
	recs := tr.Commit(nil, 0, "ns/s", store, 2)
	if got := props(recs, history.KindTruth); got["ready"] != "1" || got["pods"] != "1" {
		t.Fatalf("adopted Pod: %v", got)
	}
	tr.Commit(nil, 1, "ns/other", pod("other", "t", true, false), 3) // another object's
	recs = tr.Commit(nil, 1, "ns/s-1", pod("s-1", "s", true, false), 4)
	if got := props(recs, history.KindTruth); got["ready"] != "2" {
		t.Fatalf("second Pod: %v", got)
	}
	recs = tr.Commit(nil, 1, "ns/s-1", pod("s-1", "s", true, true), 5) // being deleted: no longer counted
	if got := props(recs, history.KindTruth); got["ready"] != "1" || got["pods"] != "1" {
		t.Fatalf("terminating Pod: %v", got)
	}
}

func TestTruthFunctionsAndErrors(t *testing.T) {
	calls := 0
	s, err := Compile(Spec{APIVersion: "example.com/v1", Kind: "Thing",
		Properties: []Property{
			{Name: "gen", Reported: "status.gen", Truth: Truth{Field: "metadata.generation"}},
			{Name: "double", Reported: "status.double", Truth: Truth{FuncName: "double", Func: func(in TruthInput) (any, error) {
				calls++
				g, _ := in.Truth("gen")
				r, ok := in.Field("spec.replicas")
				if !ok {
					return nil, errNoReplicas
				}
				return g.(int64) * r.(int64), nil
			}}},
			{Name: "bad", Reported: "status.bad", Truth: Truth{CEL: "object.spec.missing + 1"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(s)
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Thing",
		"metadata": map[string]any{"name": "x", "namespace": "ns", "uid": "u", "generation": int64(2)}, "spec": map[string]any{"replicas": int64(3)}}}
	recs := tr.Commit(nil, 0, "ns/x", u, 1)
	got := props(recs, history.KindTruth)
	if got["double"] != "6" || got["bad"] != "null" || calls != 1 {
		t.Fatalf("truths %v after %d calls", got, calls)
	}
	if tr.Errors() != 1 || recs[len(recs)-1].Kind != KindTruthError || !strings.Contains(recs[len(recs)-1].Err, "missing") {
		t.Fatalf("want the CEL error recorded: %d errors, %+v", tr.Errors(), recs[len(recs)-1])
	}
	delete(u.Object["spec"].(map[string]any), "replicas")
	recs = tr.Commit(nil, 0, "ns/x", u, 2)
	if got := props(recs, history.KindTruth); got["double"] != "null" || tr.Errors() != 3 {
		t.Fatalf("a function's error: truths %v, %d errors", got, tr.Errors())
	}
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errNoReplicas = constErr("no spec.replicas")

func TestDeclarationErrorsNameTheField(t *testing.T) {
	base := func() Spec {
		return Spec{APIVersion: "example.com/v1", Kind: "WebApp", Pods: PodSelection{Owned: true},
			Properties: []Property{{Name: "a", Reported: "status.a", Truth: Truth{ReadyPods: true}}}}
	}
	for _, c := range []struct {
		edit func(*Spec)
		want string
	}{
		{func(s *Spec) { s.Kind = "webapp" }, "subject.kind"},
		{func(s *Spec) { s.APIVersion = "" }, "subject.apiVersion: required"},
		{func(s *Spec) { s.Properties = nil }, "subject.properties: declare at least one"},
		{func(s *Spec) { s.Properties[0].Reported = "status..a" }, "subject.properties[0].reported"},
		{func(s *Spec) { s.Properties[0].Truth = Truth{} }, "subject.properties[0].truth: required"},
		{func(s *Spec) { s.Properties[0].Truth.Field = "x" }, "set one form, got field and readyPods"},
		{func(s *Spec) { s.Pods = PodSelection{} }, "subject.pods selects none"},
		{func(s *Spec) { s.Properties[0].Truth = Truth{CEL: "truth.b == 1"} }, "truth.b is not a property declared before this one"},
		{func(s *Spec) { s.Properties[0].Truth = Truth{CEL: "object.spec +"} }, "subject.properties[0].truth.cel"},
		{func(s *Spec) { s.Properties[0].Truth = Truth{FuncName: "nobody-registered-this"} }, "no truth function"},
		{func(s *Spec) { s.Properties[0].Latency = "sometimes" }, "subject.properties[0].latency: unknown value"},
		{func(s *Spec) { s.Properties[0].Default = "True" }, "subject.properties[0].default"},
		{func(s *Spec) { s.Properties = append(s.Properties, s.Properties[0]) }, "declared twice"},
		{func(s *Spec) { s.Template = Object{"kind": "X"} }, "subject.template.kind"},
	} {
		s := base()
		c.edit(&s)
		_, err := Compile(s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error with %q, got %v", c.want, err)
		}
	}
	if _, err := Compile(base()); err != nil {
		t.Fatalf("the base declaration: %v", err)
	}
}

func TestCanonicalValues(t *testing.T) {
	for v, want := range map[any]string{nil: "null", 3: "3", int64(3): "3", 3.0: "3", 2.5: "2.5", "True": `"True"`, `a"b`: `"a\"b"`, true: "true"} {
		if got := CanonicalJSON(v); got != want {
			t.Errorf("CanonicalJSON(%#v) = %s, want %s", v, got, want)
		}
	}
	if got, err := ParseJSON(`{"b": 1.0, "a": [1, "x"]}`); err != nil || got != `{"a":[1,"x"],"b":1}` {
		t.Errorf("ParseJSON: %s %v", got, err)
	}
	for s, want := range map[string]any{"3": int64(3), `"x"`: "x", "null": nil, "true": true, `"a\"b"`: `a"b`} {
		if got := decodeCanonical(s); got != want {
			t.Errorf("decodeCanonical(%s) = %#v, want %#v", s, got, want)
		}
	}
}

// TestFastPlanAgrees: the offset reads and the compiled plans of typed
// objects give what the walk by field names gives, for values zero and
// not, present and missing, over seeded random Deployments.
func TestFastPlanAgrees(t *testing.T) {
	paths := []string{"metadata.generation", "metadata.name", "spec.replicas", "status.availableReplicas", "status.observedGeneration",
		"status.conditions[type=Available].status", "status.conditions[type=Available].reason", "status.conditions[type=Progressing].observedGeneration",
		"spec.paused", "spec.template.spec.hostNetwork", "spec.minReadySeconds"}
	r := newRand(7)
	fast := 0
	for i := 0; i < 2000; i++ {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: []string{"", "web"}[r.IntN(2)], Generation: int64(r.IntN(3))}}
		if r.IntN(2) == 0 {
			d.Spec.Replicas = ptr(int32(r.IntN(3)))
		}
		d.Spec.Paused = r.IntN(2) == 0
		d.Spec.MinReadySeconds = int32(r.IntN(2))
		d.Spec.Template.Spec.HostNetwork = r.IntN(2) == 0
		d.Status.AvailableReplicas = int32(r.IntN(3))
		d.Status.ObservedGeneration = int64(r.IntN(2))
		for j := 0; j < r.IntN(3); j++ {
			d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{
				Type:   []appsv1.DeploymentConditionType{appsv1.DeploymentAvailable, appsv1.DeploymentProgressing}[r.IntN(2)],
				Status: []corev1.ConditionStatus{"", corev1.ConditionTrue, corev1.ConditionFalse}[r.IntN(3)],
				Reason: []string{"", "x"}[r.IntN(2)],
			})
		}
		for _, ps := range paths {
			p, err := ParsePath(ps)
			if err != nil {
				t.Fatal(err)
			}
			// The reference: the walk by field names.
			rv, ok := p.getTyped(reflect.ValueOf(d))
			want := ""
			if ok {
				want = canonicalValue(rv)
			}
			pl := p.planFor(reflect.TypeOf(d))
			if pl.fast.ok {
				if got, fok := pl.fast.read(reflect.ValueOf(d).UnsafePointer()); fok {
					fast++
					if !ok || got != want {
						t.Fatalf("%s on %+v: fast %q, reflective %q (ok %v)", ps, d.Status, got, want, ok)
					}
				}
			}
			if got, gok := p.Canonical(d); got != want || gok != ok {
				t.Fatalf("%s: Canonical %q %v, want %q %v", ps, got, gok, want, ok)
			}
		}
	}
	if fast == 0 {
		t.Fatal("no path took the fast read: the test checks nothing")
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

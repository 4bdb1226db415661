package auditimport

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/workload"
)

// microTime is metav1.MicroTime's JSON layout, as in audit logs.
const microTime = "2006-01-02T15:04:05.000000Z07:00"

// line builds one audit event as kube-apiserver writes it.
func line(id, verb, name, sub string, code int, at time.Time, replicas int, annotations string, user string) string {
	obj := "null"
	if verb != "delete" {
		obj = fmt.Sprintf(`{"apiVersion":"kv.driftlab.io/v1alpha1","kind":"KVCluster","metadata":{"name":%q,"namespace":"shop","annotations":{%s}},"spec":{"replicas":%d}}`, name, annotations, replicas)
	}
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":%q,"stage":"ResponseComplete",`+
		`"requestURI":"/apis/kv.driftlab.io/v1alpha1/namespaces/shop/kvclusters/%s","verb":%q,"user":{"username":%q},`+
		`"objectRef":{"resource":"kvclusters","namespace":"shop","name":%q,"apiGroup":"kv.driftlab.io","apiVersion":"v1alpha1","subresource":%q},`+
		`"responseStatus":{"metadata":{},"code":%d},"responseObject":%s,`+
		`"requestReceivedTimestamp":%q,"stageTimestamp":%q}`,
		id, name, verb, user, name, sub, code, obj, at.UTC().Format(microTime), at.Add(3*time.Millisecond).UTC().Format(microTime))
}

func TestImportTurnsKVClusterRequestsIntoTimedOperations(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	log := strings.Join([]string{
		line("1", "create", "orders", "", 201, t0, 3, "", "alice"),
		line("2", "patch", "orders", "status", 200, t0.Add(200*time.Millisecond), 3, "", "system:serviceaccount:kv:operator"),
		line("3", "patch", "orders", "", 200, t0.Add(1500*time.Millisecond), 5, "", "alice"),
		line("4", "patch", "orders", "", 200, t0.Add(2*time.Second), 5, `"driftlab.io/tick":"1"`, "loop"),
		line("5", "update", "orders", "", 409, t0.Add(2100*time.Millisecond), 9, "", "alice"),
		line("6", "patch", "orders", "", 200, t0.Add(2500*time.Millisecond), 5, `"driftlab.io/tick":"1","example.com/owner":"b"`, "loop"),
		line("7", "patch", "legacy", "", 200, t0.Add(3*time.Second), 2, "", "alice"),
		line("8", "delete", "orders", "", 200, t0.Add(4200*time.Millisecond), 0, "", "alice"),
		line("8", "delete", "orders", "", 200, t0.Add(4200*time.Millisecond), 0, "", "alice"),
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"9","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"pods","namespace":"shop","name":"orders-0","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-03-14T09:26:54.000000Z"}`,
	}, "\n")
	s, st, err := Import(strings.NewReader(log), Options{Name: "incident-0314", Source: "prod.log"})
	if err != nil {
		t.Fatal(err)
	}
	got := workload.Generate(s.Workload, 99, "kv-")
	want := []workload.Op{
		{At: 0, Kind: "create", Name: "legacy", Replicas: 2},
		{At: 0, Kind: "create", Name: "orders", Replicas: 3},
		{At: 1500 * time.Millisecond, Kind: "scale", Name: "orders", Replicas: 5},
		{At: 2 * time.Second, Kind: "annotate", Name: "orders", Value: "1"},
		{At: 2500 * time.Millisecond, Kind: "annotate", Name: "orders", Key: "example.com/owner", Value: "b"},
		{At: 4200 * time.Millisecond, Kind: "delete", Name: "orders"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("operations:\n got %v\nwant %v", got, want)
	}
	if s.Name != "incident-0314" || s.Workload.Namespace != "shop" || s.Workload.Duration.Duration != 5200*time.Millisecond {
		t.Fatalf("scenario %s ns %s duration %s", s.Name, s.Workload.Namespace, s.Workload.Duration)
	}
	for _, reason := range []string{"KVCluster status subresource (the operator's writes)", "failed request (non-2xx)", "not a KVCluster", "duplicate audit ID", "object existed before the log began: created at 0s instead", "patch that changed neither the spec nor an annotation"} {
		if st.Skipped[reason] != 1 {
			t.Errorf("skipped[%q] = %d, want 1 (all: %v)", reason, st.Skipped[reason], st.Skipped)
		}
	}
	// The scenario is a file driftlab loads.
	y, err := scenarios.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := scenarios.Parse("incident-0314.yaml", y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if fmt.Sprint(workload.Generate(back.Workload, 1, "kv-")) != fmt.Sprint(want) {
		t.Fatalf("the written scenario loads different operations:\n%s", y)
	}

	// --user keeps one client's requests: the annotation loop alone.
	loop, _, err := Import(strings.NewReader(log), Options{Users: []string{"loop"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(loop.Workload.Operations); n != 3 { // its cluster is created at 0s, then two annotates
		t.Fatalf("user filter: %v", loop.Workload.Operations)
	}
}

func TestImportRejectsWhatIsNotAnAuditLog(t *testing.T) {
	for _, tc := range []struct{ log, want string }{
		{`{"kind":"Pod","apiVersion":"v1"}`, "x.log:1: kind \"Pod\""},
		{"not json", "x.log:1: not an audit event"},
		{line("1", "create", "a", "status", 201, time.Now(), 1, "", "u"), "no successful create/update/patch/delete of a KVCluster"},
	} {
		_, _, err := Import(strings.NewReader(tc.log), Options{Source: "x.log"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	// Metadata-level events carry no body: the error says how to record one.
	meta := strings.Replace(line("1", "create", "a", "", 201, time.Now(), 1, "", "u"), `"responseObject":{`, `"ignored":{`, 1)
	if _, _, err := Import(strings.NewReader(meta), Options{}); err == nil || !strings.Contains(err.Error(), "RequestResponse") {
		t.Errorf("metadata-only event: %v", err)
	}
}

func TestNameFrom(t *testing.T) {
	for in, want := range map[string]string{"/var/log/kube/Audit_2026-03-14.log": "audit-2026-03-14", "prod.log": "prod", "__.log": "imported"} {
		if got := NameFrom(in); got != want {
			t.Errorf("NameFrom(%q) = %q, want %q", in, got, want)
		}
	}
}

// A patch that sets spec.replicas to its current value is still a request
// (load on the apiserver): the patch body says so, and it is kept.
func TestPatchToTheSameReplicasIsKept(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	same := line("2", "patch", "orders", "", 200, t0.Add(time.Second), 3, "", "alice")
	same = strings.Replace(same, `"responseObject":`, `"requestObject":{"spec":{"replicas":3}},"responseObject":`, 1)
	log := line("1", "create", "orders", "", 201, t0, 3, "", "alice") + "\n" + same
	s, st, err := Import(strings.NewReader(log), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ops := s.Workload.Operations
	if len(ops) != 2 || ops[1].Op != "scale" || ops[1].Replicas != 3 || ops[1].At.Duration != time.Second || len(st.Skipped) != 0 {
		t.Fatalf("operations %+v, skipped %v", ops, st.Skipped)
	}
}

func TestSeveralNamespacesNeedAChoice(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	log := line("1", "create", "orders", "", 201, t0, 3, "", "alice") + "\n" +
		strings.ReplaceAll(line("2", "create", "carts", "", 201, t0.Add(time.Second), 1, "", "alice"), `"namespace":"shop"`, `"namespace":"cart"`)
	if _, _, err := Import(strings.NewReader(log), Options{Source: "two.log"}); err == nil || !strings.Contains(err.Error(), "2 namespaces (cart, shop): choose one with --namespace") {
		t.Fatalf("error %v", err)
	}
	s, _, err := Import(strings.NewReader(log), Options{Namespace: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Workload.Namespace != "cart" || len(s.Workload.Operations) != 1 || s.Workload.Operations[0].Name != "carts" {
		t.Fatalf("namespace %s operations %+v", s.Workload.Namespace, s.Workload.Operations)
	}
}

// webappLine is an audit event of a WebApp (another operator's kind).
func webappLine(id, verb, name string, at time.Time, replicas int, greeting string) string {
	obj := "null"
	if verb != "delete" {
		obj = fmt.Sprintf(`{"apiVersion":"webapp.example.com/v1","kind":"WebApp","metadata":{"name":%q,"namespace":"web"},"spec":{"replicas":%d,"greeting":%q}}`, name, replicas, greeting)
	}
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":%q,"stage":"ResponseComplete",`+
		`"verb":%q,"user":{"username":"alice"},"objectRef":{"resource":"webapps","namespace":"web","name":%q,"apiGroup":"webapp.example.com","apiVersion":"v1"},`+
		`"responseStatus":{"metadata":{},"code":200},"responseObject":%s,"requestReceivedTimestamp":%q}`,
		id, verb, name, obj, at.UTC().Format(microTime))
}

// TestImportAnyKindIntoAScenario: the requests to another operator's kind
// become operations of a scenario of that subject: a replica change a
// scale, another spec change a merge patch; KVClusters are left out.
func TestImportAnyKindIntoAScenario(t *testing.T) {
	base, err := scenarios.Parse("webapp.yaml", []byte(`name: webapp
subject:
  apiVersion: webapp.example.com/v1
  kind: WebApp
  replicas: spec.replicas
  properties: [{name: gen, reported: status.observedGeneration, truth: {field: metadata.generation}}]
operator: {command: [webapp]}
`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	log := strings.Join([]string{
		webappLine("1", "create", "shop", t0, 2, "hi"),
		webappLine("2", "patch", "shop", t0.Add(time.Second), 3, "hi"),
		webappLine("3", "update", "shop", t0.Add(2*time.Second), 3, "hello"),
		line("4", "create", "orders", "", 201, t0.Add(2500*time.Millisecond), 3, "", "alice"),
		webappLine("5", "delete", "shop", t0.Add(3*time.Second), 0, ""),
	}, "\n")
	tgt := Target{Resource: schemaGR("webapp.example.com", "webapps"), Kind: "WebApp", Replicas: []string{"spec", "replicas"}}
	s, st, err := Import(strings.NewReader(log), Options{Name: "webapp-replay", Target: tgt, Into: base})
	if err != nil {
		t.Fatal(err)
	}
	if s.Subject == nil || s.Subject.Kind != "WebApp" || len(s.Operator.Command) == 0 || s.Workload.Namespace != "web" {
		t.Fatalf("the scenario is not the one it went into: %+v", s)
	}
	var got []string
	for _, op := range workload.Generate(s.Workload, 1, s.NamePrefix()) {
		got = append(got, fmt.Sprintf("%s@%s", op.String(), op.At))
	}
	want := []string{"create shop replicas=2@0s", "scale shop replicas=3@1s", `patch shop {"spec":{"greeting":"hello"}}@2s`, "delete shop@3s"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("operations\n %s\nwant\n %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
	if st.Skipped["not a WebApp"] != 1 {
		t.Fatalf("the KVCluster request was not left out: %v", st.Skipped)
	}
}

func schemaGR(group, resource string) schema.GroupResource {
	return schema.GroupResource{Group: group, Resource: resource}
}

// TestLogSpanningCenturiesIsRefused: a timestamp centuries off used to
// overflow the workload's duration to a negative number; now the import
// is refused, naming both ends' audit events.
func TestLogSpanningCenturiesIsRefused(t *testing.T) {
	t0 := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC)
	log := strings.Join([]string{
		line("a", "create", "orders", "", 201, t0, 3, "", "alice"),
		line("b", "patch", "orders", "", 200, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 5, "", "alice"),
	}, "\n")
	s, _, err := Import(strings.NewReader(log), Options{Source: "old.log"})
	if err == nil {
		t.Fatalf("imported a log spanning 400 years: workload.duration %v", s.Workload.Duration)
	}
	for _, want := range []string{"old.log", "audit event a (line 1", "audit event b (line 2", "more than the 720h0m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}

// TestErrorsNameTheAuditEvent: an operation the scenario format refuses
// (1,500 replicas) is reported at the line and audit ID of the event it
// came from, not at a line of the generated YAML.
func TestErrorsNameTheAuditEvent(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	log := strings.Join([]string{
		line("c1", "create", "orders", "", 201, t0, 3, "", "alice"),
		"",
		line("p2", "patch", "orders", "", 200, t0.Add(time.Second), 1500, "", "alice"),
	}, "\n")
	_, _, err := Import(strings.NewReader(log), Options{Source: "prod.log"})
	if err == nil {
		t.Fatal("imported a scale to 1500 replicas")
	}
	want := "prod.log:3: audit event p2 (patch orders) gives an operation the scenario format refuses: operation field replicas: must be within 0..1000, got 1500"
	if err.Error() != want {
		t.Fatalf("error\n %q\nwant\n %q", err, want)
	}
}

// TestTooLargeAnImportSaysHowToNarrowIt: a log whose kept requests make a
// scenario over the file-size limit is refused naming the log, how many
// operations it made and how to keep fewer.
func TestTooLargeAnImportSaysHowToNarrowIt(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	lines := []string{line("c", "create", "orders", "", 201, t0, 3, "", "alice")}
	for i := range 90_000 {
		lines = append(lines, line(fmt.Sprint("p", i), "patch", "orders", "", 200, t0.Add(time.Duration(i+1)*10*time.Millisecond), i%5, "", "alice"))
	}
	_, _, err := Import(strings.NewReader(strings.Join(lines, "\n")), Options{Source: "big.log"})
	if err == nil {
		t.Fatal("imported a scenario over the file-size limit")
	}
	for _, want := range []string{"big.log: the imported scenario (", " operations) is refused: ", "more than the limit of 4 MiB", "--namespace or --user"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}

package scenarios

import (
	"reflect"
	"strings"
	"testing"
)

const withOps = `name: imported
workload:
  duration: 5s
  operations:
    - {at: 0s, op: create, name: shop-db, replicas: 2}
    - {at: 1.5s, op: scale, name: shop-db, replicas: 0}
    - {at: 2s, op: annotate, name: shop-db, key: example.com/owner, value: team-b}
    - {at: 4s, op: delete, name: shop-db}
`

func TestOperationsRoundTripThroughEncode(t *testing.T) {
	s, err := Parse("imported.yaml", []byte(withOps))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Workload.Operations) != 4 || s.Workload.Operations[1].At.Seconds() != 1.5 {
		t.Fatalf("operations %+v", s.Workload.Operations)
	}
	y, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.yaml", y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if !reflect.DeepEqual(back.Workload, s.Workload) {
		t.Fatalf("round trip changed the workload:\n%s", y)
	}
	if !strings.Contains(string(y), "{at: 2s, op: annotate, name: shop-db, key: example.com/owner, value: team-b}") {
		t.Fatalf("operations are not written one per line:\n%s", y)
	}
}

func TestBadOperationsNameFileLineField(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{"op: scale, name: shop-db, replicas: 0}", ""},
		{"op: resize, name: shop-db, replicas: 0}", `imported.yaml:6: workload.operations[1].op: unknown value "resize"`},
		{"op: scale, name: Shop_DB, replicas: 0}", `imported.yaml:6: workload.operations[1].name: "Shop_DB" is not a valid object name`},
		{"op: scale, name: shop-db, replicas: -1}", `imported.yaml:6: workload.operations[1].replicas: must be within 0..1000`},
		{"op: delete, name: shop-db, replicas: 3}", `imported.yaml:6: workload.operations[1].replicas: only create and scale of the subject's objects set replicas`},
	} {
		y := strings.Replace(withOps, "op: scale, name: shop-db, replicas: 0}", tc.edit, 1)
		_, err := Parse("imported.yaml", []byte(y))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.edit, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.edit, err, tc.want)
		}
	}
	late := strings.Replace(withOps, "{at: 4s, op: delete", "{at: 6s, op: delete", 1)
	if _, err := Parse("imported.yaml", []byte(late)); err == nil || !strings.Contains(err.Error(), "imported.yaml:8: workload.operations[3].at: 6s is after the workload's end") {
		t.Errorf("an operation after the end: %v", err)
	}
	unordered := strings.Replace(withOps, "{at: 1.5s, op: scale", "{at: 0.5s, op: scale", 1)
	unordered = strings.Replace(unordered, "{at: 0s, op: create", "{at: 1s, op: create", 1)
	if _, err := Parse("imported.yaml", []byte(unordered)); err == nil || !strings.Contains(err.Error(), "workload.operations[1].at: 500ms is before") {
		t.Errorf("unordered operations: %v", err)
	}
}

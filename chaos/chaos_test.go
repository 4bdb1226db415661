package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"

	cm "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/scenarios"
)

func builtin(t *testing.T, name string) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func workflow(t *testing.T, e *Export) *cm.Workflow {
	t.Helper()
	for _, o := range e.Objects {
		if wf, ok := o.(*cm.Workflow); ok {
			return wf
		}
	}
	t.Fatal("no Workflow exported")
	return nil
}

func template(t *testing.T, wf *cm.Workflow, name string) cm.Template {
	t.Helper()
	for _, tp := range wf.Spec.Templates {
		if tp.Name == name {
			return tp
		}
	}
	t.Fatalf("Workflow has no template %q", name)
	return cm.Template{}
}

// TestIncidentMapsEveryFault checks the mapping of each fault of the
// incident scenario: IOChaos on etcd's fsync, NetworkChaos loss on the
// operator and on etcd's loopback, a watchstorm Job, and a schedule of
// Suspend (start) then chaos (duration).
func TestIncidentMapsEveryFault(t *testing.T) {
	e, err := Build(builtin(t, "incident-watch-lag"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Skipped) != 0 {
		t.Fatalf("skipped: %v", e.Skipped)
	}
	wf := workflow(t, e)
	root := template(t, wf, wf.Spec.Entry)
	if root.Type != cm.TypeParallel || len(root.Children) != 3 {
		t.Fatalf("entry %+v: want a Parallel of the 3 chaos faults", root)
	}
	for i, c := range root.Children {
		branch := template(t, wf, c)
		if branch.Type != cm.TypeSerial || len(branch.Children) != 2 {
			t.Fatalf("branch %d: %+v", i, branch)
		}
		wait, fault := template(t, wf, branch.Children[0]), template(t, wf, branch.Children[1])
		if wait.Type != cm.TypeSuspend || *wait.Deadline != "2s" {
			t.Errorf("branch %d: want Suspend 2s first, got %s %v", i, wait.Type, wait.Deadline)
		}
		if *fault.Deadline != "23s" {
			t.Errorf("branch %d: fault deadline %v, want 23s", i, *fault.Deadline)
		}
	}
	io := template(t, wf, "fault-0-wal-fsync-delay").IOChaos
	if io == nil || io.Action != cm.IoLatency || len(io.Methods) != 1 || io.Methods[0] != cm.Fsync ||
		io.Delay != "125ms" || io.VolumePath != "/var/lib/etcd" || io.Selector.LabelSelectors["component"] != "etcd" {
		t.Errorf("wal-fsync-delay: %+v", io)
	}
	op := template(t, wf, "fault-1-network-retransmit").NetworkChaos
	if op == nil || op.Loss == nil || op.Loss.Loss != "30" || op.Selector.LabelSelectors[OperatorLabel] != OperatorLabelValue {
		t.Errorf("operator-apiserver: %+v", op)
	}
	ae := template(t, wf, "fault-2-network-retransmit").NetworkChaos
	if ae == nil || ae.Loss == nil || ae.Loss.Loss != "2" || ae.Device != "lo" || ae.Selector.LabelSelectors["component"] != "etcd" {
		t.Errorf("apiserver-etcd: %+v", ae)
	}
	var job *batchv1.Job
	for _, o := range e.Objects {
		if j, ok := o.(*batchv1.Job); ok {
			job = j
		}
	}
	if job == nil {
		t.Fatal("no watchstorm Job")
	}
	cmd := strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")
	for _, want := range []string{"driftlab watchstorm", "--clients 4", "--watchers 16", "--slow-consumers 16", "--history 5000", "--delay 2s", "--duration 23s",
		"--endpoints https://127.0.0.1:2379", "--cacert /etc/kubernetes/pki/etcd/ca.crt"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("Job command %q lacks %q", cmd, want)
		}
	}
	if !job.Spec.Template.Spec.HostNetwork {
		t.Error("the watchstorm Job must run on the control-plane node's network (etcd's loopback listener)")
	}
}

// TestUnexportableFaultsAreSkippedWithReason: afterOps schedules, unknown
// and virtual-only types are listed, not dropped silently, and shown in the
// YAML.
func TestUnexportableFaultsAreSkippedWithReason(t *testing.T) {
	s := builtin(t, "gc-assist-pressure")
	s.Faults = append(s.Faults,
		scenarios.Fault{Type: scenarios.FaultWALFsyncDelay, AfterOps: 3, Delay: scenarios.Duration{Duration: time.Millisecond}, Probability: 1},
		scenarios.Fault{Type: "stale-read"},
		scenarios.Fault{Type: "failpoint"},
	)
	e, err := Build(s, Options{Namespace: "chaos-ns"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Skipped) != 3 {
		t.Fatalf("want 3 skipped, got %v", e.Skipped)
	}
	for i, want := range []string{"afterOps", "virtual backend", "failpoint-enabled build"} {
		if !strings.Contains(e.Skipped[i].Reason, want) {
			t.Errorf("skipped[%d] = %q, want a reason about %s", i, e.Skipped[i].Reason, want)
		}
	}
	b, err := e.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, sk := range e.Skipped {
		if !bytes.Contains(b, []byte("# SKIPPED "+sk.String())) {
			t.Errorf("YAML lacks the comment for %s", sk)
		}
	}
	wf := workflow(t, e)
	if wf.Namespace != "chaos-ns" {
		t.Errorf("namespace %q, want chaos-ns", wf.Namespace)
	}
	st := template(t, wf, "fault-0-gc-assist-pressure").StressChaos
	if st == nil || st.Stressors.MemoryStressor == nil || st.Stressors.MemoryStressor.Size != "256MB" {
		t.Errorf("gc-assist-pressure: %+v", st)
	}
}

// TestYAMLIsDeterministicAndDecodes renders every built-in scenario twice
// (same bytes) and decodes each document back into its type, strictly.
func TestYAMLIsDeterministicAndDecodes(t *testing.T) {
	for _, name := range scenarios.BuiltinNames() {
		s := builtin(t, name)
		e1, _ := Build(s, Options{})
		e2, _ := Build(builtin(t, name), Options{})
		b1, err := e1.YAML()
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := e2.YAML()
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s: two exports differ", name)
		}
		docs := strings.Split(string(b1), "\n---\n")[1:]
		if len(docs) != len(e1.Objects) {
			t.Errorf("%s: %d documents for %d objects", name, len(docs), len(e1.Objects))
		}
		for i, d := range docs {
			var into any = &cm.Workflow{}
			if GVK(e1.Objects[i]).Kind == "Job" {
				into = &batchv1.Job{}
			}
			if err := yaml.UnmarshalStrict([]byte(d), into); err != nil {
				t.Errorf("%s document %d: %v", name, i, err)
			}
		}
	}
}

// gc-assist-pressure also starts the operator's own heap growth, through
// its --gc-pressure flag, with the fault's window.
func TestGCPressureExportsOperatorArgs(t *testing.T) {
	e, err := Build(builtin(t, "gc-assist-pressure"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "--gc-pressure=entries=500000,rate=8,after=5s,for=10s"
	if len(e.OperatorArgs) != 1 || e.OperatorArgs[0] != want {
		t.Fatalf("operator args %q, want [%q]", e.OperatorArgs, want)
	}
	b, err := e.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("# OPERATOR-ARGS "+want+"\n")) {
		t.Fatalf("YAML has no OPERATOR-ARGS line:\n%s", b)
	}
	g, err := operator.ParseGCPressure(strings.TrimPrefix(want, "--gc-pressure="))
	if err != nil || g.Entries != 500000 {
		t.Fatalf("the exported flag does not parse: %+v %v", g, err)
	}
}

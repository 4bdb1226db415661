package lab

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/subject"
)

// The declaration types, under the names a test uses.
type (
	// System is an operator under test: its subject, CRDs and how it runs.
	System = harness.System
	// Subject declares the custom resource under test and its properties.
	Subject = subject.Spec
	// Property is a reported value and the truth it must equal.
	Property = subject.Property
	// Truth is what a property's reported value must equal.
	Truth = subject.Truth
	// TruthInput is what a Go truth function reads.
	TruthInput = subject.TruthInput
	// PodSelection says which Pods belong to an object.
	PodSelection = subject.PodSelection
	// RelatedField is a field of another object (a Deployment the object
	// owns, say).
	RelatedField = subject.RelatedField
	// Object is a template or part of an object.
	Object = subject.Object
	// Scenario is a scenario (scenarios.Load reads one).
	Scenario = scenarios.Scenario
	// Setup is Manager with more to say (the operator's rest.Config, the
	// manager's options).
	Setup = harness.Setup
	// World is kube-controller-manager, kube-scheduler and simulated
	// Nodes around the apiserver (Options.World, a scenario's world:).
	World = scenarios.World
)

// Latency modes and reflection rules of properties.
const (
	LatencyChanges   = subject.LatencyChanges
	LatencyIncreases = subject.LatencyIncreases
	LatencyOff       = subject.LatencyOff
	ReflectEqual     = subject.ReflectEqual
	ReflectAtLeast   = subject.ReflectAtLeast
)

// Manager runs a controller-runtime operator in the test's process:
// driftlab builds the manager (scheme, metrics and probes on 127.0.0.1,
// leader election off) and setup adds the controllers, as the operator's
// main function would. Started for each run, stopped after it.
func Manager(setup func(ctrl.Manager) error, scheme *runtime.Scheme) harness.Operator {
	return &harness.Setup{Func: setup, Scheme: scheme}
}

// Command runs an operator as a process: argv are templates that may name
// {{.Kubeconfig}}, {{.MetricsAddr}}, {{.ProbeAddr}} and {{.Namespace}};
// KUBECONFIG is set in its environment. It is ready when /readyz on
// {{.ProbeAddr}} answers, if argv names it, else at once (set ReadyHTTP,
// ReadyLog or ReadyAfter on the result to say otherwise).
func Command(argv ...string) *harness.Command {
	c := &harness.Command{Argv: argv}
	for _, a := range argv {
		if scenarios.ExpandTemplate(a, map[string]string{"ProbeAddr": "\x00"}) != a {
			c.ReadyHTTP = "http://{{.ProbeAddr}}/readyz"
		}
	}
	return c
}

// FromScenario is the System of a scenario that declares its subject (and
// its CRDs), run by op: a YAML subject with an operator from Go.
func FromScenario(s *Scenario, name string, op harness.Operator) (*System, error) {
	if s.Subject == nil {
		return nil, fmt.Errorf("lab: scenario %s declares no subject", s.Name)
	}
	c := *s
	c.Operator = scenarios.Operator{External: true} // the CRDs and subject only
	sys, err := harness.FromScenario(&c)
	if err != nil {
		return nil, err
	}
	sys.Name, sys.Operator = name, op
	return &sys, nil
}

// Load reads a scenario file, failing the test on bad input.
func Load(t testing.TB, path string) *Scenario {
	t.Helper()
	s, err := scenarios.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Parse reads a scenario from YAML text, failing the test on bad input.
func Parse(t testing.TB, yaml string) *Scenario {
	t.Helper()
	s, err := scenarios.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A child process of the test binary runs a registered manager: the
// process-level faults and crashes of a real operator, with the test's
// own code.
const childEnv = "DRIFTLAB_LAB_CHILD"

var (
	childMu sync.Mutex
	childs  = map[string]*harness.Setup{}
)

// Register names a manager setup so that Child can run it in a child
// process of the test binary; call it before Main (from TestMain or an
// init function): the child runs the same registrations.
func Register(name string, setup func(ctrl.Manager) error, scheme *runtime.Scheme) {
	childMu.Lock()
	defer childMu.Unlock()
	childs[name] = &harness.Setup{Func: setup, Scheme: scheme}
}

// Child runs the manager registered under name in a child process of the
// test binary (which must use Main), stopped with SIGTERM.
func Child(name string) harness.Operator {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return &harness.Command{
		Argv:     []string{self, "-test.run=^$"},
		Env:      map[string]string{"DRIFTLAB_LAB_METRICS": "{{.MetricsAddr}}", "DRIFTLAB_LAB_PROBE": "{{.ProbeAddr}}", "DRIFTLAB_LAB_NAMESPACE": "{{.Namespace}}"},
		ExtraEnv: []string{childEnv + "=" + name},
		ReadyLog: "^driftlab-lab: ready$",
	}
}

// runChild runs a registered manager until SIGTERM; its exit code.
func runChild(name string) int {
	childMu.Lock()
	s, ok := childs[name]
	childMu.Unlock()
	if !ok {
		fmt.Fprintf(os.Stderr, "driftlab-lab: no manager registered as %q (lab.Register before lab.Main)\n", name)
		return 2
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "driftlab-lab: %v\n", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "driftlab-lab-child-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "driftlab-lab: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	p, err := s.Start(ctx, harness.OperatorEnv{Config: cfg, Dir: dir, MetricsAddr: os.Getenv("DRIFTLAB_LAB_METRICS"),
		ProbeAddr: os.Getenv("DRIFTLAB_LAB_PROBE"), Namespace: os.Getenv("DRIFTLAB_LAB_NAMESPACE"), Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "driftlab-lab: %v\n", err)
		return 1
	}
	if err := p.Ready(ctx, time.Minute); err != nil {
		fmt.Fprintf(os.Stderr, "driftlab-lab: %v\n", err)
		return 1
	}
	fmt.Println("driftlab-lab: ready")
	<-ctx.Done()
	if err := p.Stop(15 * time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "driftlab-lab: %v\n", err)
		return 1
	}
	return 0
}

// RunFile runs the scenario file at path on the shared plane with op as
// its operator: the subject and CRDs come from the file, the operator
// from the test. It is Load, FromScenario and Shared(t).Run in one:
//
//	out := lab.RunFile(t, "testdata/webapp.yaml", lab.Manager(controller.Setup, scheme))
//	require.True(t, out.Passed(), out.Explain())
func RunFile(t testing.TB, path string, op harness.Operator, opts ...RunOption) *Outcome {
	t.Helper()
	s := Load(t, path)
	name := s.Operator.Name
	if name == "" {
		name = s.Name
	}
	sys, err := FromScenario(s, name, op)
	if err != nil {
		t.Fatal(err)
	}
	return Shared(t).Run(t, s, sys, opts...)
}

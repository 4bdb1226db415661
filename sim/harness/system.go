package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/subject"
)

// System is an operator under test: the custom resource it manages, what
// to install, and how to run it. The reference operator is one
// (operator.System); a scenario file that declares a subject makes another
// (FromScenario); a Go test builds its own (package lab).
type System struct {
	// Name names the operator in results ("webapp-operator").
	Name string
	// Subject declares its kind and properties.
	Subject subject.Spec
	// Scheme knows the Go types the harness decodes committed objects
	// into; nil means client-go's built-in kinds, with custom resources
	// read as unstructured objects (which is all the harness needs).
	Scheme *runtime.Scheme
	// CRDs are installed before the operator starts, with those found at
	// CRDPaths (files or directories, as envtest takes them).
	CRDs     []*apiextensionsv1.CustomResourceDefinition
	CRDPaths []string
	// Operator starts the operator; nil means it runs elsewhere (already
	// running against the cluster backend).
	Operator Operator
	// Commands says that the operator accepts harness commands (its
	// runtime samples, GC pressure, its own failpoints): the reference
	// operator does. Faults that need them are skipped for one that
	// does not, and the run does not pass.
	Commands bool
}

// Operator starts an operator for one run.
type Operator interface {
	// Start starts the operator and returns once it is started (not
	// necessarily ready).
	Start(ctx context.Context, env OperatorEnv) (Process, error)
}

// OperatorEnv is what an operator is started with.
type OperatorEnv struct {
	// Kubeconfig is the operator's kubeconfig file (through a fault proxy
	// when one sits on its path); Config the same as a rest.Config.
	Kubeconfig string
	Config     *rest.Config
	// Namespace holds the workload's objects.
	Namespace string
	// Dir is the run directory: the operator's log goes there.
	Dir string
	// MetricsAddr and ProbeAddr are free 127.0.0.1 addresses for its
	// metrics and health probes.
	MetricsAddr, ProbeAddr string
	// Record adds a history record (the operator's own records, when it
	// writes driftlab's record lines).
	Record func(history.Record)
	// Log, when set, takes an in-process operator's log instead of
	// operator.log in Dir.
	Log io.Writer
}

// Process is a started operator.
type Process interface {
	// Ready waits until the operator is ready for the workload.
	Ready(ctx context.Context, timeout time.Duration) error
	// Stop asks it to stop and waits up to grace; the error says why it
	// did not stop cleanly, or that it had exited on its own during the
	// run.
	Stop(grace time.Duration) error
	// Send delivers a harness command (operator.Command); ErrNoCommands
	// when the operator takes none.
	Send(cmd any) error
	// Log is the path of its log, for messages.
	Log() string
}

// ErrNoCommands is what Send returns for an operator that takes no
// harness commands.
var ErrNoCommands = errors.New("the operator takes no harness commands")

// FromScenario is the System of a scenario that declares its own subject:
// its CRDs relative to the scenario file, its operator started from
// operator.command (or external).
func FromScenario(s *scenarios.Scenario) (System, error) {
	if s.Subject == nil {
		return System{}, errors.New("harness: the scenario declares no subject: it tests the reference operator (operator.System)")
	}
	sys := System{Subject: *s.Subject, Name: s.Operator.Name}
	for _, p := range s.Subject.CRDs {
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.Dir(), p)
		}
		sys.CRDPaths = append(sys.CRDPaths, p)
	}
	o := s.Operator
	switch {
	case o.External:
		if sys.Name == "" {
			sys.Name = "external operator"
		}
	case len(o.Command) > 0:
		dir := o.Dir
		if dir != "" && !filepath.IsAbs(dir) {
			dir = filepath.Join(s.Dir(), dir)
		}
		c := &Command{Argv: o.Command, Env: o.Env, Dir: dir, ReadyHTTP: o.Ready.HTTP, ReadyLog: o.Ready.Log, ReadyAfter: o.Ready.After.Duration, ReadyTimeout: o.Ready.Timeout.Duration}
		if c.ReadyHTTP == "" && c.ReadyLog == "" && usesProbe(o.Command) {
			c.ReadyHTTP = "http://{{.ProbeAddr}}/readyz"
		}
		sys.Operator = c
		if sys.Name == "" {
			sys.Name = commandName(o.Command)
		}
	default:
		return System{}, &scenarios.FieldError{File: s.File, Field: "operator.command",
			Msg: fmt.Sprintf("the scenario tests %s, so it needs its operator: set operator.command (or operator.external: true on the cluster backend)", s.Subject.Kind)}
	}
	return sys, nil
}

// commandName names an operator after its command: the program, or the
// package of a `go run`.
func commandName(argv []string) string {
	if filepath.Base(argv[0]) == "go" && len(argv) > 2 && argv[1] == "run" {
		for _, a := range argv[2:] {
			if !strings.HasPrefix(a, "-") {
				return filepath.Base(strings.TrimSuffix(a, "/..."))
			}
		}
	}
	return filepath.Base(argv[0])
}

func usesProbe(argv []string) bool {
	for _, a := range argv {
		if scenarios.ExpandTemplate(a, map[string]string{"ProbeAddr": "\x00"}) != a {
			return true
		}
	}
	return false
}

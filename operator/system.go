package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/driftlab/driftlab/operator/config/crd"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/history"
)

// Name names the reference operator in results.
const Name = "driftlab reference operator (KVCluster)"

// System is the reference operator as the harness runs any operator: its
// subject, its CRD, and its process — this binary re-executed as
// `driftlab operator` with the scenario's cache variant, seeded bugs and
// GOMAXPROCS, writing its history records on standard output and reading
// harness commands on standard input. argv replaces the binary and
// subcommand (a test binary whose TestMain hands over to the CLI).
func System(s *scenarios.Scenario, argv ...string) (*harness.System, error) {
	if !s.Reference() {
		return nil, fmt.Errorf("operator: scenario %s tests %s, not the reference operator's KVCluster", s.Name, s.Subject.Kind)
	}
	crds, err := crd.Load()
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding driftlab's own binary to run the operator: %w", err)
		}
		argv = []string{self, "operator"}
	}
	args := append(append([]string{}, argv...), "--kubeconfig", "{{.Kubeconfig}}", "--cache", s.Operator.Cache,
		"--metrics-bind-address", "{{.MetricsAddr}}", "--events", "-", "--commands")
	for _, b := range s.Operator.Bugs {
		args = append(args, "--bug", b)
	}
	env := []string{"DRIFTLAB_OPERATOR_CHILD=1"}
	if n := s.Operator.GOMAXPROCS; n > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(n))
	}
	return &harness.System{
		Name: Name, Subject: Subject(), Scheme: Scheme(), CRDs: crds, Commands: true,
		Operator: &harness.Command{Argv: args, Env: s.Operator.Env, ExtraEnv: env, Records: true, Commands: true},
	}, nil
}

// InProcess is the reference operator run in this process (Run), with the
// scenario's cache variant and seeded bugs (not its GOMAXPROCS); its
// records go to the history. A process can run it once:
// controller-runtime refuses a second controller of the same name.
func InProcess(s *scenarios.Scenario) harness.Operator { return &inProcess{s: s} }

type inProcess struct{ s *scenarios.Scenario }

func (o *inProcess) Start(ctx context.Context, env harness.OperatorEnv) (harness.Process, error) {
	if len(o.s.Operator.Env) > 0 {
		return nil, fmt.Errorf("operator.env: the reference operator runs inside driftlab here, so its environment cannot be set; run it in its own process")
	}
	logPath := filepath.Join(env.Dir, "operator.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &inProc{ready: make(chan struct{}), done: make(chan struct{}), log: logf}
	events := &recordWriter{add: func(r history.Record) {
		if env.Record != nil {
			env.Record(r)
		}
		if r.Kind == history.KindOperatorReady {
			p.once.Do(func() { close(p.ready) })
		}
	}}
	octx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		p.err = Run(octx, env.Config, Options{Cache: o.s.Operator.Cache, Bugs: o.s.Operator.Bugs, MetricsAddr: env.MetricsAddr, Events: events, Log: logf})
		close(p.done)
	}()
	return p, nil
}

type inProc struct {
	ready  chan struct{}
	once   sync.Once
	done   chan struct{}
	err    error
	cancel context.CancelFunc
	log    *os.File
}

func (p *inProc) Log() string        { return p.log.Name() }
func (p *inProc) Send(cmd any) error { return harness.ErrNoCommands }

func (p *inProc) Ready(ctx context.Context, timeout time.Duration) error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("operator exited before it was ready: %v (see %s)", p.err, p.log.Name())
	case <-time.After(timeout):
		return fmt.Errorf("operator not ready after %s (see %s)", timeout, p.log.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *inProc) Stop(grace time.Duration) error {
	defer p.log.Close()
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		return fmt.Errorf("operator did not stop within %s", grace)
	}
}

// recordWriter turns the JSON lines of a history.Emitter into records.
type recordWriter struct {
	mu  sync.Mutex
	buf []byte
	add func(history.Record)
}

// Write adds every complete JSON line of p as a record.
func (w *recordWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		var rc history.Record
		if err := json.Unmarshal(w.buf[:i], &rc); err == nil && rc.Kind != "" {
			w.add(rc)
		}
		w.buf = w.buf[i+1:]
	}
}

var _ io.Writer = (*recordWriter)(nil)

package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
)

// Command is an operator the harness runs as a process: any binary, a `go
// run`, a script. Nothing is added to its arguments: they are templates
// that may name {{.Kubeconfig}}, {{.MetricsAddr}}, {{.ProbeAddr}} and
// {{.Namespace}}; KUBECONFIG is set in its environment (which
// controller-runtime reads). Its output goes to operator.log in the run
// directory. It runs in a process group of its own, so that stopping it
// also stops what it started (the binary `go run` builds).
type Command struct {
	// Argv is the program and its arguments, as templates.
	Argv []string
	// Env adds variables (values are templates).
	Env map[string]string
	// Dir is the working directory; empty means the harness's.
	Dir string
	// Ready: the operator is ready when ReadyHTTP (a URL template)
	// answers 200, or when a line of its output matches ReadyLog, or
	// when it writes an operator-ready record (Records); then after
	// ReadyAfter. None of them: at once.
	ReadyHTTP  string
	ReadyLog   string
	ReadyAfter time.Duration
	// ReadyTimeout, when set, bounds the wait instead of the run's
	// Options.ReadyTimeout.
	ReadyTimeout time.Duration
	// Records says that its standard output carries driftlab history
	// records as JSON lines (history.Emitter), which go to the history;
	// other lines go to the log. The reference operator does this.
	Records bool
	// Commands says that it reads harness commands as JSON lines on its
	// standard input (operator.Command).
	Commands bool
	// ExtraEnv are added as they are (KEY=VALUE), after Env.
	ExtraEnv []string
}

// Start starts the process.
func (c *Command) Start(ctx context.Context, env OperatorEnv) (Process, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("operator command: empty")
	}
	vals := map[string]string{"Kubeconfig": env.Kubeconfig, "MetricsAddr": env.MetricsAddr, "ProbeAddr": env.ProbeAddr, "Namespace": env.Namespace}
	argv := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		argv[i] = scenarios.ExpandTemplate(a, vals)
	}
	logPath := filepath.Join(env.Dir, "operator.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "[driftlab] starting %q in %s\n", argv, dirOr(c.Dir))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+scenarios.ExpandTemplate(c.Env[k], vals))
	}
	cmd.Env = append(cmd.Env, c.ExtraEnv...)
	// A group of its own, killed with the harness (Pdeathsig) and stopped
	// as a group: `go run` leaves the binary it built running otherwise.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &proc{cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{}), log: logf, logPath: logPath, record: env.Record}
	if c.ReadyLog != "" {
		if p.readyLog, err = regexp.Compile(c.ReadyLog); err != nil {
			logf.Close()
			return nil, fmt.Errorf("operator ready.log: %w", err)
		}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if c.Commands {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			logf.Close()
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting operator %q: %w", argv, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.read(out, c.Records) }()
	go func() { defer wg.Done(); p.read(errPipe, false) }()
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.exited)
	}()
	p.httpURL = scenarios.ExpandTemplate(c.ReadyHTTP, vals)
	p.byRecord = c.Records && c.ReadyHTTP == "" && c.ReadyLog == ""
	p.after = c.ReadyAfter
	p.timeout = c.ReadyTimeout
	return p, nil
}

func dirOr(d string) string {
	if d == "" {
		return "the working directory"
	}
	return d
}

// proc is a running Command.
type proc struct {
	cmd      *exec.Cmd
	log      *os.File
	logPath  string
	logMu    sync.Mutex
	record   func(history.Record)
	stdin    io.WriteCloser
	inMu     sync.Mutex
	ready    chan struct{}
	once     sync.Once
	exited   chan struct{}
	err      error // valid after exited is closed
	readyLog *regexp.Regexp
	httpURL  string
	byRecord bool
	after    time.Duration
	timeout  time.Duration
}

func (p *proc) Log() string { return p.logPath }

func (p *proc) markReady() { p.once.Do(func() { close(p.ready) }) }

// read copies one output stream to the log, taking records from it when
// records is set, and watches for the ready line.
func (p *proc) read(r io.Reader, records bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if records && len(line) > 0 && line[0] == '{' {
			var rec history.Record
			if err := json.Unmarshal(line, &rec); err == nil && rec.Kind != "" {
				if p.record != nil {
					p.record(rec)
				}
				if rec.Kind == history.KindOperatorReady {
					p.markReady()
				}
				continue
			}
		}
		p.logMu.Lock()
		_, _ = p.log.Write(append(bytes.Clone(line), '\n'))
		p.logMu.Unlock()
		if p.readyLog != nil && p.readyLog.Match(line) {
			p.markReady()
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// Send writes one harness command as a JSON line on its standard input.
func (p *proc) Send(cmd any) error {
	if p.stdin == nil {
		return ErrNoCommands
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	_, err = p.stdin.Write(append(b, '\n'))
	return err
}

// Ready waits for the readiness the command declares.
func (p *proc) Ready(ctx context.Context, timeout time.Duration) error {
	if p.timeout > 0 {
		timeout = p.timeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var poll <-chan time.Time
	if p.httpURL != "" {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	} else if p.readyLog == nil && !p.byRecord {
		p.markReady()
	}
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.ready:
			return p.wait(ctx)
		case <-poll:
			if resp, err := client.Get(p.httpURL); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					p.markReady()
				}
			}
		case <-p.exited:
			return fmt.Errorf("operator exited before it was ready: %v (see %s)", p.err, p.logPath)
		case <-deadline.C:
			what := "its operator-ready record"
			switch {
			case p.httpURL != "":
				what = p.httpURL + " to answer 200"
			case p.readyLog != nil:
				what = fmt.Sprintf("a line matching %q", p.readyLog)
			}
			return fmt.Errorf("operator not ready after %s: waited for %s (see %s)", timeout, what, p.logPath)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *proc) wait(ctx context.Context) error {
	if p.after <= 0 {
		return nil
	}
	t := time.NewTimer(p.after)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.exited:
		return fmt.Errorf("operator exited before it was ready: %v (see %s)", p.err, p.logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends SIGTERM to its process group and kills the group after grace.
func (p *proc) Stop(grace time.Duration) error {
	defer func() {
		p.logMu.Lock()
		p.log.Close()
		p.logMu.Unlock()
	}()
	select {
	case <-p.exited:
		return fmt.Errorf("operator exited during the run: %v (see %s)", p.err, p.logPath)
	default:
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
		_ = syscall.Kill(pgid, syscall.SIGKILL) // what it started and left behind
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			return p.err
		}
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("operator did not stop within %s of SIGTERM; killed", grace)
	}
}

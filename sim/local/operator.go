package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// operatorProc is the reference operator running in its own process. Its
// standard output carries history records as JSON lines; its standard error
// (logs) goes to operator.log in the run directory.
type operatorProc struct {
	cmd    *exec.Cmd
	ready  chan struct{}
	exited chan struct{}
	err    error // valid after exited is closed
	log    *os.File
	lines  chan struct{} // closed when stdout is drained
	stdin  io.WriteCloser
	inMu   sync.Mutex
}

// Send writes one harness command to the operator (a JSON line on its
// standard input, see operator.Command).
func (p *operatorProc) Send(cmd any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	_, err = p.stdin.Write(append(b, '\n'))
	return err
}

// startOperator starts argv plus args, with env added to the environment.
// Every record it prints is added to rec.
func startOperator(argv, args, env []string, logPath string, rec *history.Recorder) (*operatorProc, error) {
	if len(argv) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding driftlab's own binary to run the operator: %w", err)
		}
		argv = []string{self, "operator"}
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], append(append([]string{}, argv[1:]...), args...)...)
	cmd.Stderr = logf
	cmd.Env = append(append(os.Environ(), "DRIFTLAB_OPERATOR_CHILD=1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting operator %q: %w", argv, err)
	}
	p := &operatorProc{cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{}), log: logf, lines: make(chan struct{}), stdin: in}
	go p.read(out, rec)
	go func() {
		<-p.lines
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *operatorProc) read(r io.Reader, rec *history.Recorder) {
	defer close(p.lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	readyClosed := false
	for sc.Scan() {
		var r history.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Kind == "" {
			fmt.Fprintf(p.log, "[stdout] %s\n", sc.Bytes())
			continue
		}
		rec.Add(r)
		if r.Kind == history.KindOperatorReady && !readyClosed {
			close(p.ready)
			readyClosed = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// waitReady waits until the operator's caches are synced.
func (p *operatorProc) waitReady(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("operator exited before it was ready: %v (see %s)", p.err, p.log.Name())
	case <-t.C:
		return fmt.Errorf("operator not ready after %s (see %s)", timeout, p.log.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop asks the operator to shut down (SIGTERM) and kills it if it has not
// exited within grace.
func (p *operatorProc) stop(grace time.Duration) error {
	defer p.log.Close()
	select {
	case <-p.exited:
		return fmt.Errorf("operator exited during the run: %v (see %s)", p.err, p.log.Name())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			return p.err
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("operator did not stop within %s of SIGTERM; killed", grace)
	}
}

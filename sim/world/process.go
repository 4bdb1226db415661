package world

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processSpec says how to run one component.
type processSpec struct {
	name, binary, dir string
	args, extra       []string
	cert              servingCert
	// ready reports whether the component at base (https://127.0.0.1:port)
	// is ready.
	ready func(ctx context.Context, c *http.Client, base string) bool
	grace time.Duration
}

// process is a running component.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	port    int
	startup time.Duration
	grace   time.Duration
	exited  chan struct{}
	waitErr error
}

// startProcess runs the component with --bind-address=127.0.0.1 and a free
// --secure-port, and waits until it is ready. A port taken between probe
// and bind is retried with another, up to three times.
func startProcess(ctx context.Context, spec processSpec) (*process, error) {
	logPath := filepath.Join(spec.dir, spec.name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: spec.cert.pool}, DisableKeepAlives: true},
	}
	if spec.grace == 0 {
		spec.grace = 10 * time.Second
	}
	for attempt := 1; ; attempt++ {
		p, retry, err := spec.try(ctx, client, log, logPath, attempt < 3)
		if !retry {
			if err != nil && p == nil {
				log.Close()
			}
			return p, err
		}
	}
}

// try starts the component once on a fresh port and waits for it. It asks
// for a retry when the process exited because the port was taken.
func (spec processSpec) try(ctx context.Context, client *http.Client, log *os.File, logPath string, mayRetry bool) (p *process, retry bool, err error) {
	port, err := freePort()
	if err != nil {
		return nil, false, err
	}
	off, _ := log.Seek(0, io.SeekEnd)
	args := append(append(append([]string(nil), spec.args...),
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port)), spec.extra...)
	cmd := exec.Command(spec.binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("starting %s: %w", spec.name, err)
	}
	p = &process{name: spec.name, cmd: cmd, log: log, port: port, grace: spec.grace, exited: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()

	base := p.url()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if spec.ready(ctx, client, base) {
			p.startup = time.Since(t0)
			return p, false, nil
		}
		select {
		case <-p.exited:
			out := readFrom(logPath, off)
			if mayRetry && bytes.Contains(out, []byte("address already in use")) {
				return nil, true, nil
			}
			return p, false, fmt.Errorf("%s exited while starting (%v; log %s): %s", spec.name, p.waitErr, logPath, tail(out, 1500))
		case <-ctx.Done():
			return p, false, fmt.Errorf("%s not ready after %s (log %s): %w", spec.name, time.Since(t0).Round(time.Millisecond), logPath, ctx.Err())
		case <-tick.C:
		}
	}
}

func (p *process) url() string {
	if p == nil {
		return ""
	}
	return "https://127.0.0.1:" + strconv.Itoa(p.port)
}

// exitErr says how the process ended, or nil while it runs.
func (p *process) exitErr() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v; log %s)", p.name, p.waitErr, p.log.Name())
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to the grace period, then kills, and waits
// for the process to be gone. A process that had already exited is an
// error.
func (p *process) stop() error {
	defer p.log.Close()
	if err := p.exitErr(); err != nil {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, p.grace)
	}
}

// controllerManagerReady: /healthz answers ok and lists the controllers'
// checks, which the manager registers once it has built them, just before
// it starts their informers.
func controllerManagerReady(ctx context.Context, c *http.Client, base string) bool {
	code, body := get(ctx, c, base+"/healthz?verbose")
	return code == http.StatusOK && bytes.Contains(body, []byte("-controller ok"))
}

// schedulerReady: /readyz answers ok (its event handlers have synced).
func schedulerReady(ctx context.Context, c *http.Client, base string) bool {
	code, _ := get(ctx, c, base+"/readyz")
	return code == http.StatusOK
}

func get(ctx context.Context, c *http.Client, url string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func readFrom(path string, off int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	return b
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/driftlab/driftlab/faults/fsyncfs"
	"github.com/driftlab/driftlab/faults/netproxy"
	"github.com/driftlab/driftlab/scenarios"
)

// Fault is one scheduled fault, built for one backend.
type Fault interface {
	// Spec is the fault as the scenario declared it (defaults filled in).
	Spec() scenarios.Fault
	// Start injects the fault.
	Start(ctx context.Context) error
	// Stop removes it and restores the system fully.
	Stop(ctx context.Context) error
	// Effect reports what the fault measurably did during its last window,
	// for the summary (for example the mean WAL fsync duration).
	Effect() map[string]float64
}

// Preparer is a Fault that needs the running control plane before its
// window, for work that must not count against the window (for example
// writing the history a watcher storm replays). The backend calls Prepare
// once, after start-up and before the workload.
type Preparer interface {
	Prepare(ctx context.Context) error
}

// SkipError says a fault cannot run on this backend, and why.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skipped returns the skip reason of err, if it is a SkipError.
func Skipped(err error) (string, bool) {
	var se *SkipError
	if errors.As(err, &se) {
		return se.Reason, true
	}
	return "", false
}

// Type is one row of the fault table.
type Type struct {
	// Name is the scenario's type name.
	Name string
	// Local builds fault i of the scenario on the local backend, claiming
	// what it needs from the plan (i names its random streams). It returns
	// a *SkipError when the machine cannot run it.
	Local func(i int, spec scenarios.Fault, p *Plan) (Fault, error)
}

// Table is the one table of fault types.
var Table = map[string]Type{
	scenarios.FaultWALFsyncDelay:     {Name: scenarios.FaultWALFsyncDelay, Local: newFsyncDelay},
	scenarios.FaultNetworkRetransmit: {Name: scenarios.FaultNetworkRetransmit, Local: newRetransmit},
	scenarios.FaultWatcherExhaustion: {Name: scenarios.FaultWatcherExhaustion, Local: newWatcherExhaustion},
	scenarios.FaultGCAssistPressure:  {Name: scenarios.FaultGCAssistPressure, Local: newGCPressure},
}

// Commander sends a command to the operator process.
type Commander interface {
	Send(cmd any) error
}

// MetricReader reads one of the embedded etcd's metrics: a gauge's or
// counter's value, or a histogram's sum and count.
type MetricReader func(name string) (value float64, count uint64, ok bool)

// Plan is what the local backend offers faults: resources they claim before
// the control plane starts, and handles to it once it runs. The backend
// fills in the handles; faults read them when they start.
type Plan struct {
	// Seed is the run's seed; each mechanism derives its own stream.
	Seed uint64

	// WALDir is where etcd must keep its WAL; empty means etcd's default.
	WALDir string
	// MaxConcurrentStreams caps gRPC streams per etcd connection; 0 keeps
	// etcd's default.
	MaxConcurrentStreams uint32
	// OperatorCommands says that the operator takes harness commands
	// (Command): faults inside its process need them.
	OperatorCommands bool

	// Set by the backend once the control plane runs.
	EtcdEndpoint string       // etcd's client URL (direct, not proxied)
	Operator     Commander    // the operator process
	EtcdMetric   MetricReader // etcd's in-process metrics

	mu       sync.Mutex
	tmp      string
	walMount *fsyncfs.Mount
	links    map[string]*netproxy.Proxy
	want     map[string]bool
	linkOpts map[string]netproxy.Options
}

// NewPlan returns an empty plan.
func NewPlan(seed uint64) *Plan {
	return &Plan{Seed: seed, links: map[string]*netproxy.Proxy{}, want: map[string]bool{}, linkOpts: map[string]netproxy.Options{}}
}

// WALMount mounts (once) a FUSE passthrough for etcd's WAL and sets WALDir.
func (p *Plan) WALMount() (*fsyncfs.Mount, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.walMount != nil {
		return p.walMount, nil
	}
	if err := fsyncfs.Available(); err != nil {
		return nil, &SkipError{Reason: err.Error()}
	}
	if p.tmp == "" {
		d, err := os.MkdirTemp("", "driftlab-faults-")
		if err != nil {
			return nil, err
		}
		p.tmp = d
	}
	backing, mnt := filepath.Join(p.tmp, "wal-backing"), filepath.Join(p.tmp, "wal")
	for _, d := range []string{backing, mnt} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	m, err := fsyncfs.MountDir(backing, mnt, p.Seed)
	if err != nil {
		return nil, &SkipError{Reason: "FUSE mount failed: " + err.Error()}
	}
	p.walMount = m
	// etcd wants to create the WAL directory itself.
	p.WALDir = filepath.Join(mnt, "member-wal")
	return m, nil
}

// WantLink asks the backend to put a proxy on a link.
func (p *Plan) WantLink(link string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want[link] = true
}

// WantLinkOptions asks for a proxy on a link whose connections have the
// options o (the proxy exists for the whole run, so they apply to it all).
func (p *Plan) WantLinkOptions(link string, o netproxy.Options) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want[link] = true
	p.linkOpts[link] = o
}

// Wants reports whether a fault asked for a proxy on link.
func (p *Plan) Wants(link string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.want[link]
}

// StartProxy starts the proxy of a wanted link in front of upstream
// ("host:port") and returns its address. The backend calls it.
func (p *Plan) StartProxy(link, upstream string) (string, error) {
	p.mu.Lock()
	o := p.linkOpts[link]
	p.mu.Unlock()
	px, err := netproxy.NewWithOptions(link, upstream, p.Seed, o)
	if err != nil {
		return "", fmt.Errorf("starting the %s proxy: %w", link, err)
	}
	p.mu.Lock()
	p.links[link] = px
	p.mu.Unlock()
	return px.Addr(), nil
}

// Proxy returns the proxy on a link, or nil.
func (p *Plan) Proxy(link string) *netproxy.Proxy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[link]
}

// Close releases the plan's resources: proxies, then the WAL mount. Call it
// after etcd has stopped (a FUSE mount in use must not lose its server).
func (p *Plan) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	names := make([]string, 0, len(p.links))
	for n := range p.links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.links[n].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.links = map[string]*netproxy.Proxy{}
	if p.walMount != nil {
		if err := p.walMount.Close(); err != nil {
			errs = append(errs, fmt.Errorf("unmounting the WAL mount: %w", err))
		}
		p.walMount = nil
	}
	if p.tmp != "" {
		if err := os.RemoveAll(p.tmp); err != nil {
			errs = append(errs, err)
		}
		p.tmp = ""
	}
	return errors.Join(errs...)
}

// Build builds every fault of a scenario for the local backend. Faults that
// cannot run here come back in skipped (index → reason); any other error
// stops the run before it starts.
func Build(specs []scenarios.Fault, p *Plan) (built map[int]Fault, skipped map[int]string, err error) {
	built, skipped = map[int]Fault{}, map[int]string{}
	for i, s := range specs {
		t, ok := Table[s.Type]
		if !ok || t.Local == nil {
			skipped[i] = fmt.Sprintf("%s is not supported on the local backend", s.Type)
			continue
		}
		f, err := t.Local(i, s, p)
		if reason, isSkip := Skipped(err); isSkip {
			skipped[i] = reason
			continue
		}
		if err != nil {
			return built, skipped, fmt.Errorf("faults[%d] (%s): %w", i, s.Type, err)
		}
		built[i] = f
	}
	return built, skipped, nil
}

// since returns seconds elapsed, for effects.
func since(t time.Time) float64 { return time.Since(t).Seconds() }

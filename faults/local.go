package faults

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/driftlab/driftlab/faults/fsyncfs"
	"github.com/driftlab/driftlab/faults/netproxy"
	"github.com/driftlab/driftlab/faults/watchstorm"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/workload"
)

// base holds what every local fault has.
type base struct {
	spec   scenarios.Fault
	plan   *Plan
	effect map[string]float64
}

func (b *base) Spec() scenarios.Fault      { return b.spec }
func (b *base) Effect() map[string]float64 { return b.effect }

// histReading is a reading of an etcd histogram: its sum and count.
type histReading struct {
	sum   float64
	count uint64
}

func (b *base) readHist(name string) histReading {
	if b.plan.EtcdMetric == nil {
		return histReading{}
	}
	s, c, _ := b.plan.EtcdMetric(name)
	return histReading{s, c}
}

func meanSince(a, z histReading) float64 {
	if z.count <= a.count {
		return 0
	}
	return (z.sum - a.sum) / float64(z.count-a.count)
}

// --- wal-fsync-delay -------------------------------------------------------

type fsyncDelay struct {
	base
	mount *fsyncfs.Mount
	at    time.Time
	hist  histReading
	stats fsyncfs.Stats
	prior float64 // mean WAL fsync before the window
}

var _ Fault = (*fsyncDelay)(nil)

const walFsyncMetric = "etcd_disk_wal_fsync_duration_seconds"

func newFsyncDelay(_ int, spec scenarios.Fault, p *Plan) (Fault, error) {
	m, err := p.WALMount()
	if err != nil {
		return nil, err
	}
	return &fsyncDelay{base: base{spec: spec, plan: p}, mount: m}, nil
}

func (f *fsyncDelay) Start(context.Context) error {
	f.hist = f.readHist(walFsyncMetric)
	f.prior = meanSince(histReading{}, f.hist)
	f.stats = f.mount.Stats()
	f.at = time.Now()
	return f.mount.SetDelay(fsyncfs.Delay{Base: f.spec.Delay.Duration, Jitter: f.spec.Jitter.Duration, Probability: f.spec.Probability})
}

func (f *fsyncDelay) Stop(context.Context) error {
	err := f.mount.SetDelay(fsyncfs.Delay{})
	now := f.readHist(walFsyncMetric)
	st := f.mount.Stats()
	delayed := st.Delayed - f.stats.Delayed
	f.effect = map[string]float64{
		"wal_fsync_mean_ms_before": f.prior * 1000,
		"wal_fsync_mean_ms":        meanSince(f.hist, now) * 1000,
		"wal_fsyncs":               float64(now.count - f.hist.count),
		"fsyncs_delayed":           float64(delayed),
		"injected_delay_ms":        ms(st.Injected - f.stats.Injected),
		"window_seconds":           since(f.at),
	}
	if delayed > 0 {
		f.effect["injected_mean_ms"] = ms(st.Injected-f.stats.Injected) / float64(delayed)
		// What the mount did in the window besides the drawn delay: how
		// long its sleeps really lasted (a loaded machine wakes them
		// late) and the backing file system's own fsync, per fsync.
		f.effect["slept_mean_ms"] = ms(st.Slept-f.stats.Slept) / float64(delayed)
	}
	if n := (st.Fsyncs - f.stats.Fsyncs) + (st.DirFsyncs - f.stats.DirFsyncs); n > 0 {
		f.effect["backing_fsync_mean_ms"] = ms(st.Backend-f.stats.Backend) / float64(n)
	}
	return err
}

// --- network-retransmit ----------------------------------------------------

type retransmit struct {
	base
	at    time.Time
	stats netproxy.RetransmitStats
	conns netproxy.ConnStats
	burst *netproxy.BurstSchedule // nil: independent loss only
}

var _ Fault = (*retransmit)(nil)

// Backpressure is the buffering of a link whose network-retransmit fault
// has backpressure: a path with Ethernet's MSS, whose peers' socket
// buffers then autotune to tens of KiB (loopback's 64 KiB MSS makes them
// megabytes: kube-apiserver's send buffer towards the proxy measured
// 69 KiB with it, 3.8 MiB without), and little in the proxy itself, which
// a real path does not have: 16 KiB receive buffers and four chunks
// queued behind a stalled one. A stall of seconds then fills the sender's
// buffers and blocks its writes, as on a real path, instead of vanishing
// into loopback's.
var Backpressure = netproxy.Options{MSS: 1448, ReadBuffer: 16 << 10, ShortQueue: true}

func newRetransmit(i int, spec scenarios.Fault, p *Plan) (Fault, error) {
	if spec.Backpressure {
		p.WantLinkOptions(spec.Link, Backpressure)
	} else {
		p.WantLink(spec.Link)
	}
	f := &retransmit{base: base{spec: spec, plan: p}}
	if spec.Burst != nil {
		var err error
		if f.burst, err = BurstSchedule(p.Seed, i, spec.Burst); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// BurstSchedule is the blackout schedule of fault i (a network-retransmit
// with a burst) of a run with this seed: the local proxy's and the virtual
// link model's, drawn from the stream netproxy.BurstStream(i).
func BurstSchedule(seed uint64, i int, b *scenarios.Burst) (*netproxy.BurstSchedule, error) {
	return netproxy.NewBurstSchedule(NetBurst(b), workload.Stream(seed, netproxy.BurstStream(i)))
}

// NetBurst is a scenario's burst in netproxy's terms.
func NetBurst(b *scenarios.Burst) netproxy.Burst {
	return netproxy.Burst{Every: b.Every.Duration, MinLength: b.Length.Min.Duration, MaxLength: b.Length.Max.Duration, Loss: b.Loss, Established: b.Established}
}

func (f *retransmit) proxy() (*netproxy.Proxy, error) {
	px := f.plan.Proxy(f.spec.Link)
	if px == nil {
		return nil, fmt.Errorf("driftlab-harness-bug: no proxy on link %s", f.spec.Link)
	}
	return px, nil
}

func (f *retransmit) Start(context.Context) error {
	px, err := f.proxy()
	if err != nil {
		return err
	}
	f.at = time.Now()
	px.ResetMaxStall()
	f.stats = px.RetransmitStats(netproxy.Both)
	f.conns = px.ConnStats()
	var errs []error
	if f.spec.Loss > 0 || f.burst != nil {
		// The schedule's time zero is the window's start, as on the
		// virtual backend.
		errs = append(errs, px.SetRetransmitBursts(netproxy.Both, f.spec.Loss, f.spec.MinRTO.Duration, f.spec.MaxRTO.Duration, f.burst, f.at))
	}
	if f.spec.Latency.Duration > 0 {
		errs = append(errs, px.SetLatency(netproxy.Both, f.spec.Latency.Duration, 0))
	}
	if f.spec.ResetConnections {
		px.ResetConnections()
	}
	return errors.Join(errs...)
}

func (f *retransmit) Stop(context.Context) error {
	px, err := f.proxy()
	if err != nil {
		return err
	}
	px.Clear()
	st := px.RetransmitStats(netproxy.Both)
	cs := px.ConnStats()
	chunks, lost := st.Chunks-f.stats.Chunks, st.Retransmits-f.stats.Retransmits
	model := netproxy.RetransmitModel{P: f.spec.Loss, MinRTO: f.spec.MinRTO.Duration, MaxRTO: f.spec.MaxRTO.Duration}
	window := time.Since(f.at)
	f.effect = map[string]float64{
		"chunks":              float64(chunks),
		"retransmits":         float64(lost),
		"stall_total_ms":      ms(st.Stall - f.stats.Stall),
		"stalls_over_1s":      float64(st.LongStalls - f.stats.LongStalls),
		"stall_max_ms":        ms(st.MaxStall),
		"connections_opened":  float64(cs.Opened - f.conns.Opened),
		"connections_closed":  float64(cs.Closed - f.conns.Closed),
		"model_mean_stall_ms": ms(model.Mean()),
		"window_seconds":      window.Seconds(),
	}
	if chunks > 0 {
		f.effect["loss_rate"] = float64(lost) / float64(chunks)
		f.effect["mean_stall_per_chunk_ms"] = ms(st.Stall-f.stats.Stall) / float64(chunks)
	}
	addBurstEffect(f.effect, f.burst, window)
	return nil
}

// addBurstEffect adds what a burst schedule put in a window of length
// window: its blackouts, their total and longest length.
func addBurstEffect(e map[string]float64, b *netproxy.BurstSchedule, window time.Duration) {
	if b == nil {
		return
	}
	var total, longest time.Duration
	bos := b.Blackouts(window)
	for _, bo := range bos {
		l := min(bo.To, window) - bo.From
		total += l
		longest = max(longest, l)
	}
	e["blackouts"] = float64(len(bos))
	e["blackout_total_ms"] = ms(total)
	e["blackout_max_ms"] = ms(longest)
}

// --- watcher-exhaustion ----------------------------------------------------

type watcherExhaustion struct {
	base
	storm    *watchstorm.Storm
	startRev int64
	at       time.Time
	peakSlow float64
	stopPoll chan struct{}
	polled   chan struct{}
}

var _ Fault = (*watcherExhaustion)(nil)

func newWatcherExhaustion(_ int, spec scenarios.Fault, p *Plan) (Fault, error) {
	if spec.MaxConcurrentStreams > 0 {
		p.MaxConcurrentStreams = uint32(spec.MaxConcurrentStreams)
	}
	return &watcherExhaustion{base: base{spec: spec, plan: p}}, nil
}

var _ Preparer = (*watcherExhaustion)(nil)

// Prepare writes the history the storm's watchers replay, before the
// workload, so that writing it does not slow the window (or get slowed by
// other faults).
func (f *watcherExhaustion) Prepare(ctx context.Context) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{f.plan.EtcdEndpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer c.Close()
	f.startRev, err = watchstorm.Preload(ctx, c, f.spec.History, 1024)
	return err
}

func (f *watcherExhaustion) Start(ctx context.Context) error {
	if f.startRev == 0 {
		if err := f.Prepare(ctx); err != nil {
			return err
		}
	}
	f.at = time.Now()
	var err error
	f.storm, err = watchstorm.Start(watchstorm.Config{
		Endpoints: []string{f.plan.EtcdEndpoint}, Clients: f.spec.Clients, Watchers: f.spec.Watchers,
		SlowConsumers: f.spec.SlowConsumers, StartRev: f.startRev,
	})
	if err != nil {
		return err
	}
	f.peakSlow = 0
	f.stopPoll, f.polled = make(chan struct{}), make(chan struct{})
	go f.poll()
	return nil
}

// poll keeps the highest slow-watcher gauge seen during the window.
func (f *watcherExhaustion) poll() {
	defer close(f.polled)
	for {
		if f.plan.EtcdMetric != nil {
			if v, _, ok := f.plan.EtcdMetric("etcd_debugging_mvcc_slow_watcher_total"); ok && v > f.peakSlow {
				f.peakSlow = v
			}
		}
		select {
		case <-f.stopPoll:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (f *watcherExhaustion) Stop(context.Context) error {
	if f.storm == nil {
		return nil
	}
	close(f.stopPoll)
	<-f.polled
	st := f.storm.Stats()
	f.storm.Stop()
	f.storm = nil
	f.effect = map[string]float64{
		"slow_watchers_peak": f.peakSlow,
		"rewatches":          float64(st.Rewatches),
		"slow_consumers":     float64(st.SlowConsumers),
		"history_revisions":  float64(f.spec.History),
		"window_seconds":     since(f.at),
	}
	return nil
}

// --- gc-assist-pressure ----------------------------------------------------

type gcPressure struct {
	base
	at time.Time
}

var _ Fault = (*gcPressure)(nil)

func newGCPressure(_ int, spec scenarios.Fault, p *Plan) (Fault, error) {
	if !p.OperatorCommands {
		return nil, &SkipError{Reason: NeedsCommands}
	}
	return &gcPressure{base: base{spec: spec, plan: p}}, nil
}

func (f *gcPressure) Start(context.Context) error {
	if f.plan.Operator == nil {
		return errors.New("driftlab-harness-bug: no operator to send gc-assist-pressure to")
	}
	f.at = time.Now()
	return f.plan.Operator.Send(Command{Cmd: CmdGCPressureStart, Entries: f.spec.Entries, Rate: f.spec.Rate})
}

func (f *gcPressure) Stop(context.Context) error {
	f.effect = map[string]float64{"window_seconds": since(f.at)}
	return f.plan.Operator.Send(Command{Cmd: CmdGCPressureStop})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

package virtual

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/driftlab/driftlab/faults/netproxy"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/report"
	"github.com/driftlab/driftlab/sim/workload"
)

// Calibration of the modelled faults (see the package doc and
// docs/design.md for where each figure comes from).
const (
	// syncInterval is etcd's syncWatchersLoop period (watchable_store.go).
	syncInterval = 100 * time.Millisecond
	// maxWatchersPerSync is how many unsynced watchers one sync catches up.
	maxWatchersPerSync = 512
	// syncCostPerRevision is the store-lock time of one sync per revision of
	// history replayed: 20,000 revisions of 1 KiB held writes for about
	// 40 ms per 100 ms cycle on embedded etcd 3.7.3 (put p95 35–41 ms).
	syncCostPerRevision = 2 * time.Microsecond
	// syncCostPerWatcher is the store-lock time per watcher caught up.
	syncCostPerWatcher = 20 * time.Microsecond
	// gcCostPerEntry is the operator's pause per map entry grown and copied
	// in one gc-assist-pressure cycle on one core: 500,000 entries gave
	// scheduling delays up to 50 ms and a mean status latency of about
	// twice the one outside the window on the local backend.
	gcCostPerEntry = 60 * time.Nanosecond
)

// Link indexes and directions of the modelled network.
const (
	linkAPIEtcd = iota // kube-apiserver ↔ etcd
	linkOpAPI          // operator ↔ kube-apiserver
)

const (
	up   = 0 // towards the store
	down = 1 // from the store (responses, watch events)
)

// vfault is one fault of the scenario, as the model runs it: its window,
// its own random stream, and what it measurably did.
type vfault struct {
	i     int
	spec  *scenarios.Fault
	r     *rand.Rand
	on    bool
	begun bool // started at least once
	from  time.Duration
	to    time.Duration
	// Counters of the window, by type.
	n, m, k   int
	sum, sum2 time.Duration
	peak      time.Duration
	// Type-specific state.
	rto        netproxy.RetransmitModel
	burst      *netproxy.BurstSchedule // network-retransmit: blackouts (nil: none)
	hold       time.Duration           // watcher-exhaustion: lock held per sync
	pauses     []time.Duration         // gc-assist-pressure: pause length per cycle
	period     time.Duration           // gc-assist-pressure: cycle length
	pauseBase  time.Duration
	effect     map[string]float64
	skip       string // why the model cannot run it
	crashCall  int    // crash-restart: the reconcile call the crash happens at
	crashed    bool
	relistSeen int
	// view is burst as the operator's current connection sees it
	// (burstFor), made for connection viewGen-1 opened at viewOpened.
	view       *netproxy.BurstSchedule
	viewGen    int
	viewOpened time.Duration
	// watch is what the operator's informers did in the window: watches
	// that ended, by cause, and relists (the summary's plane).
	watch report.PlaneStats
}

// faultModel holds a run's faults and answers the model's questions about
// them: when a write commits, when a chunk crosses a link, when etcd's
// store lock is free, when the operator's process can run. With no faults
// the world has no faultModel and none of these hooks run.
type faultModel struct {
	w   *world
	all []*vfault

	fsync, watch, gc, stale, withhold, crash []*vfault
	links                                    [2][]*vfault

	// Group commit of the WAL: the fsync running [batchStart, batchEnd) and
	// the one queued behind it, ending at nextEnd.
	batchStart, batchEnd, nextEnd time.Duration
	hasNext                       bool
	// Last send and delivery time per link, direction and lane: chunks
	// keep their order in a lane, so a stalled chunk holds back the ones
	// sent after it.
	linkSent, linkLast [2][2][3]time.Duration
	// lastCommit is the commit time of each key's last write: writes to
	// one object commit in their order even when the link reorders their
	// arrival (writes to different objects may then commit out of
	// revision order, as their arrival order at etcd would decide).
	lastCommit map[objKey]time.Duration
	// conn is the operator's HTTP/2 connection (nil without a fault on
	// its link).
	conn *h2conn
	// watchOutside is what the operator's informers did outside every
	// window; watched tells whether any watch ended or relisted at all.
	watchOutside report.PlaneStats
	watched      bool
}

// countWatch counts an operator watch-end or relist record in the windows
// of the faults that are on, or outside every window.
func (fm *faultModel) countWatch(r *history.Record) {
	fm.watched = true
	in := false
	for _, f := range fm.all {
		if f.on {
			in = true
			addWatch(&f.watch, r)
		}
	}
	if !in {
		addWatch(&fm.watchOutside, r)
	}
}

func addWatch(p *report.PlaneStats, r *history.Record) {
	if r.Kind == history.KindRelist {
		p.Relists++
		return
	}
	if p.WatchEnds == nil {
		p.WatchEnds = map[string]int{}
	}
	p.WatchEnds[r.Op]++
}

// planes puts the operator's watch counts into the summary, per window and
// outside, when any watch ended or relisted (the model samples no control
// plane: only the operator's part of the plane is there).
func (fm *faultModel) planes(sum *report.Summary) {
	if fm == nil || !fm.watched {
		return
	}
	for i, f := range fm.all {
		if f.begun && i < len(sum.Faults) {
			p := f.watch
			p.Seconds = (f.to - f.from).Seconds()
			sum.Faults[i].Plane = &p
		}
	}
	out := fm.watchOutside
	sum.PlaneOutside = &out
}

// Lanes of a link: what shares one ordered stream. On the operator's link
// everything does (client-go multiplexes its requests and watches on one
// HTTP/2 connection); between kube-apiserver and etcd each resource's
// watch is one ordered stream and requests go independently (the local
// backend's proxy sees many connections there, and a stall on one does
// not hold back the others).
const (
	laneRequest = 0 // a request or its answer
	// laneWatch + objKind is the watch stream of a kind.
	laneWatch = 0
)

func newFaultModel(w *world) *faultModel {
	fm := &faultModel{w: w}
	for i := range w.s.Faults {
		spec := &w.s.Faults[i]
		f := &vfault{i: i, spec: spec, r: w.k.stream("fault/" + strconv.Itoa(i) + "/" + spec.Type)}
		fm.all = append(fm.all, f)
		switch spec.Type {
		case scenarios.FaultWALFsyncDelay:
			fm.fsync = append(fm.fsync, f)
		case scenarios.FaultNetworkRetransmit:
			l := linkAPIEtcd
			if spec.Link == scenarios.LinkOperatorAPIServer {
				l = linkOpAPI
			}
			f.rto = netproxy.RetransmitModel{P: spec.Loss, MinRTO: spec.MinRTO.Duration, MaxRTO: spec.MaxRTO.Duration}
			if b := spec.Burst; b != nil {
				// The local proxy's schedule (faults.BurstSchedule): the
				// same stream of the run's seed, so the same blackouts.
				var err error
				if f.burst, err = netproxy.NewBurstSchedule(netBurst(b), workload.Stream(w.s.Seed, netproxy.BurstStream(i))); err != nil {
					f.skip = err.Error()
				}
			}
			fm.links[l] = append(fm.links[l], f)
		case scenarios.FaultWatcherExhaustion:
			n := spec.Clients*spec.Watchers + spec.SlowConsumers
			f.hold = time.Duration(spec.History)*syncCostPerRevision + time.Duration(min(n, maxWatchersPerSync))*syncCostPerWatcher
			f.hold = min(f.hold, syncInterval*95/100)
			fm.watch = append(fm.watch, f)
		case scenarios.FaultGCAssistPressure:
			f.period = time.Duration(float64(time.Second) / spec.Rate)
			base := time.Duration(spec.Entries) * gcCostPerEntry
			if w.s.Operator.GOMAXPROCS != 1 {
				base /= 2 // the growth runs on another core: assists and STW only
			}
			f.pauseBase = min(base, f.period*6/10)
			fm.gc = append(fm.gc, f)
		case scenarios.FaultStaleRead:
			fm.stale = append(fm.stale, f)
		case scenarios.FaultWithholdEvents:
			fm.withhold = append(fm.withhold, f)
		case scenarios.FaultCrashRestart:
			fm.crash = append(fm.crash, f)
		default:
			f.skip = spec.Type + " has no model on the virtual backend"
		}
	}
	return fm
}

// netBurst is a scenario's burst in netproxy's terms (the local backend's
// faults.NetBurst; the model does not import package faults).
func netBurst(b *scenarios.Burst) netproxy.Burst {
	return netproxy.Burst{Every: b.Every.Duration, MinLength: b.Length.Min.Duration, MaxLength: b.Length.Max.Duration, Loss: b.Loss,
		Established: b.Established}
}

// burstFor is the blackout schedule of f as the chunks it is asked about
// see it: on the operator's link, as the current connection sees it (with
// an established-flows burst, a connection opened after a blackout began
// is spared by it).
func (fm *faultModel) burstFor(f *vfault) *netproxy.BurstSchedule {
	c := fm.conn
	if f.burst == nil || c == nil || f.spec.Link != scenarios.LinkOperatorAPIServer || !f.burst.Burst().Established {
		return f.burst
	}
	if f.viewGen != c.gen+1 || f.viewOpened != c.opened {
		f.view, f.viewGen, f.viewOpened = f.burst.ForConn(c.opened-f.from), c.gen+1, c.opened
	}
	return f.view
}

// relists reports whether an informer may relist in this run (it needs
// the store's committed state): also with a fault on the operator's link,
// where the health check can close the connection.
func (fm *faultModel) relists() bool {
	return len(fm.withhold) > 0 || len(fm.crash) > 0 || fm.rewatches() || len(fm.links[linkOpAPI]) > 0
}

// rewatches reports whether an informer may watch again from an older
// revision (it needs the store's log).
func (fm *faultModel) rewatches() bool {
	for _, f := range fm.links[linkOpAPI] {
		if f.spec.ResetConnections {
			return true
		}
	}
	return false
}

// active returns the fault of fs that is on now, or nil. Windows of one
// type (on one link) never overlap, so there is at most one.
func active(fs []*vfault) *vfault {
	for _, f := range fs {
		if f.on {
			return f
		}
	}
	return nil
}

// schedule arms every fault's start: at its start time (time zero is the
// workload start) or after its afterOps-th workload operation.
func (fm *faultModel) schedule() {
	for _, f := range fm.all {
		if f.skip != "" {
			fm.w.record(history.Record{T: 0, Source: history.SourceHarness, Kind: history.KindFaultSkipped, Op: f.spec.Type,
				Detail: strconv.Itoa(f.i) + ": " + f.skip})
			continue
		}
		if f.spec.AfterOps > 0 {
			continue // started by opDone
		}
		fm.w.k.at(f.spec.Start.Duration, func() { fm.start(f) })
	}
}

// opDone is called after the n-th workload operation was applied.
func (fm *faultModel) opDone(n int) {
	for _, f := range fm.all {
		if f.spec.AfterOps == n && f.skip == "" {
			fm.w.k.at(fm.w.k.now, func() { fm.start(f) })
		}
	}
}

func (fm *faultModel) start(f *vfault) {
	w := fm.w
	if w.phase >= phaseDone || f.begun {
		return
	}
	f.on, f.begun, f.from = true, true, w.k.now
	w.record(history.Record{T: w.k.now, Source: history.SourceHarness, Kind: history.KindFaultStart, Op: f.spec.Type, Detail: strconv.Itoa(f.i)})
	switch f.spec.Type {
	case scenarios.FaultNetworkRetransmit:
		if f.spec.ResetConnections && f.spec.Link == scenarios.LinkOperatorAPIServer && w.op != nil {
			w.op.resetWatches(f)
		}
	case scenarios.FaultWithholdEvents:
		w.op.setWithhold(f, true)
	case scenarios.FaultCrashRestart:
		// The crash happens at a seeded call of the next reconcile: its
		// first to fourth request (Get, List, then writes); a reconcile
		// with fewer requests crashes just before it returns.
		f.crashCall = 1 + f.r.IntN(4)
		w.op.armCrash(f)
	}
	if d := f.spec.Duration.Duration; d > 0 {
		w.k.after(d, func() { fm.stop(f) })
	}
}

// workloadEnded stops the faults that last until the end of the workload.
func (fm *faultModel) workloadEnded() {
	for _, f := range fm.all {
		if f.on && f.spec.Duration.Duration == 0 {
			fm.stop(f)
		}
	}
}

// stopAll stops every fault still on (the run is ending).
func (fm *faultModel) stopAll() {
	for _, f := range fm.all {
		fm.stop(f)
	}
}

func (fm *faultModel) stop(f *vfault) {
	if !f.on {
		return
	}
	w := fm.w
	f.on, f.to = false, w.k.now
	switch f.spec.Type {
	case scenarios.FaultWithholdEvents:
		w.op.setWithhold(f, false)
	case scenarios.FaultCrashRestart:
		if !f.crashed {
			// No reconcile ran in the window: the process crashes idle.
			w.op.crashNow(f, 0)
		}
	}
	f.effect = fm.effectOf(f)
	w.record(history.Record{T: w.k.now, Source: history.SourceHarness, Kind: history.KindFaultStop, Op: f.spec.Type, Detail: strconv.Itoa(f.i), Metrics: f.effect})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// effectOf reports what a fault measurably did in its window, with the
// same keys as the local backend where the quantity is the same.
func (fm *faultModel) effectOf(f *vfault) map[string]float64 {
	secs := (f.to - f.from).Seconds()
	e := map[string]float64{"window_seconds": secs}
	switch f.spec.Type {
	case scenarios.FaultWALFsyncDelay:
		// n fsyncs (one per group commit), m of them delayed, sum their
		// duration, sum2 the injected part; k writes whose commit waited
		// peak at most.
		e["wal_fsyncs"] = float64(f.n)
		e["fsyncs_delayed"] = float64(f.m)
		e["injected_delay_ms"] = ms(f.sum2)
		e["wal_fsync_mean_ms_before"] = ms(fm.w.opts.CommitLatency)
		if f.n > 0 {
			e["wal_fsync_mean_ms"] = ms(f.sum) / float64(f.n)
		}
		if f.m > 0 {
			e["injected_mean_ms"] = ms(f.sum2) / float64(f.m)
		}
		e["commit_max_ms"] = ms(f.peak)
	case scenarios.FaultNetworkRetransmit:
		e["chunks"] = float64(f.n)
		e["retransmits"] = float64(f.m)
		e["stall_total_ms"] = ms(f.sum)
		e["model_mean_stall_ms"] = ms(f.rto.Mean())
		if f.n > 0 {
			e["loss_rate"] = float64(f.m) / float64(f.n)
			e["mean_stall_per_chunk_ms"] = ms(f.sum) / float64(f.n)
		}
		if f.spec.ResetConnections {
			e["connections_reset"] = 1
		}
		if f.burst != nil {
			e["stalls_over_1s"] = float64(f.k)
			e["stall_max_ms"] = ms(f.peak)
			var total, longest time.Duration
			bos := f.burst.Blackouts(f.to - f.from)
			for _, bo := range bos {
				l := min(bo.To, f.to-f.from) - bo.From
				total += l
				longest = max(longest, l)
			}
			e["blackouts"] = float64(len(bos))
			e["blackout_total_ms"] = ms(total)
			e["blackout_max_ms"] = ms(longest)
		}
	case scenarios.FaultWatcherExhaustion:
		churned := f.spec.Clients * f.spec.Watchers
		e["slow_watchers_peak"] = float64(churned + f.spec.SlowConsumers)
		e["rewatches"] = float64(int64(churned) * int64((f.to-f.from)/syncInterval))
		e["slow_consumers"] = float64(f.spec.SlowConsumers)
		e["history_revisions"] = float64(f.spec.History)
		e["lock_held_ms_per_sync"] = ms(f.hold)
		e["commits_delayed"] = float64(f.n)
		e["commit_wait_total_ms"] = ms(f.sum)
	case scenarios.FaultGCAssistPressure:
		for t := f.from + time.Duration(len(f.pauses))*f.period; t < f.to; t += f.period {
			f.pauses = append(f.pauses, f.pauseBase/2+time.Duration(f.r.Int64N(int64(f.pauseBase)+1)))
		}
		var total, peak time.Duration
		n := 0
		for k, p := range f.pauses {
			if f.from+time.Duration(k)*f.period >= f.to {
				break
			}
			total += p
			peak = max(peak, p)
			n++
		}
		e["gc_pauses"] = float64(n)
		e["gc_pause_total_ms"] = ms(total)
		e["gc_pause_per_s"] = 0
		if secs > 0 {
			e["gc_pause_per_s"] = total.Seconds() / secs
			e["sched_slow_per_s"] = float64(n) / secs
		}
		e["gc_pause_per_s_before"] = 0
		e["sched_slow_per_s_before"] = 0
		e["sched_latency_max_ms"] = ms(peak)
		e["operator_waits"] = float64(f.n)
		e["operator_wait_total_ms"] = ms(f.sum)
	case scenarios.FaultStaleRead:
		e["stale_reads"] = float64(f.n)
		e["reads_differing"] = float64(f.m)
		e["lag_ms"] = ms(f.spec.Lag.Duration)
	case scenarios.FaultWithholdEvents:
		e["events_withheld"] = float64(f.n)
		e["events_delivered_on_relist"] = float64(f.m)
		e["delete_unknown"] = float64(f.k)
	case scenarios.FaultCrashRestart:
		if f.crashed {
			e["crashes"] = 1
			e["crash_call"] = float64(f.n)
			e["queue_items_lost"] = float64(f.m)
			e["down_ms"] = ms(f.sum)
			e["relisted_objects"] = float64(f.k)
		}
	}
	return e
}

// results is the summary's fault list.
func (fm *faultModel) results(windows func(i int) *report.FaultResult) []report.FaultResult {
	out := make([]report.FaultResult, len(fm.all))
	for i, f := range fm.all {
		r := windows(i)
		r.Index, r.Type, r.Schedule = i, f.spec.Type, f.spec.Describe()
		switch {
		case f.skip != "":
			r.Skipped = f.skip
		case !f.begun:
			r.Error = "never started (the run ended first)"
		}
		r.Effect = f.effect
		out[i] = *r
	}
	return out
}

// ---- wal-fsync-delay: group commit ---------------------------------------

// commitTime returns when a write that reaches etcd at arrive commits. With
// no fsync delay on, after base (the model's commit latency). With one on,
// writes go through a group commit: a write joins the fsync that starts
// next (at once if the disk is idle, else when the running one ends) and
// commits when that fsync ends; each fsync takes base plus, with the
// fault's probability, delay + uniform[0, jitter). So commits stay FIFO
// and a queue forms when writes arrive faster than fsyncs end.
func (fm *faultModel) commitTime(arrive, base time.Duration) time.Duration {
	f := active(fm.fsync)
	if f == nil {
		return arrive + base
	}
	for fm.hasNext && arrive >= fm.batchEnd {
		fm.batchStart, fm.batchEnd, fm.hasNext = fm.batchEnd, fm.nextEnd, false
	}
	var at time.Duration
	switch {
	case arrive >= fm.batchEnd: // idle disk: an fsync starts now
		fm.batchStart, fm.batchEnd = arrive, arrive+fm.fsyncDuration(f, base)
		at = fm.batchEnd
	case arrive >= fm.batchStart: // one is running: wait for the next
		if !fm.hasNext {
			fm.nextEnd, fm.hasNext = fm.batchEnd+fm.fsyncDuration(f, base), true
		}
		at = fm.nextEnd
	default: // issued before the running fsync began: it rides in it
		at = fm.batchEnd
	}
	f.peak = max(f.peak, at-arrive)
	return at
}

func (fm *faultModel) fsyncDuration(f *vfault, base time.Duration) time.Duration {
	d := base
	f.n++
	if f.spec.Probability >= 1 || f.r.Float64() < f.spec.Probability {
		extra := f.spec.Delay.Duration
		if j := f.spec.Jitter.Duration; j > 0 {
			extra += time.Duration(f.r.Int64N(int64(j)))
		}
		d += extra
		f.m++
		f.sum2 += extra
	}
	f.sum += d
	return d
}

// ---- network-retransmit --------------------------------------------------

// cross returns when a chunk sent at t on a link, in a direction, arrives.
// While a retransmit fault is on the link, the chunk is lost with the
// fault's probability and resent after an RTO that starts at minRTO and
// doubles on each consecutive loss up to maxRTO (at most
// netproxy.MaxRetransmits times), exactly netproxy.RetransmitModel, plus
// the fault's fixed latency. Chunks keep their order in a lane of a link:
// a chunk never arrives before the one sent before it (head-of-line
// blocking), also after the fault has ended (held data is delivered
// first).
func (fm *faultModel) cross(link, dir, lane int, t time.Duration) time.Duration {
	fs := fm.links[link]
	if len(fs) == 0 {
		return t
	}
	at := t
	ordered := link != linkAPIEtcd || lane != laneRequest
	conn := fm.conn
	if link != linkOpAPI {
		conn = nil
	} else if conn != nil && dir == up {
		conn.use(t)
	}
	if f := active(fs); f != nil {
		at += f.spec.Latency.Duration
		start := at
		// With bursts, a chunk queued behind a stalled one is first sent
		// when the lane delivers again (TCP resends the queue after the
		// head segment), and its transmissions meet the blackouts of that
		// time, as the local toxic does.
		if f.burst != nil && ordered && t >= fm.linkSent[link][dir][lane] {
			start = max(start, fm.linkLast[link][dir][lane])
		}
		burst := f.burst
		if conn != nil {
			burst = fm.burstFor(f)
		}
		losses, stall := f.rto.Retransmit(f.r, burst, start-f.from)
		f.n++
		if losses > 0 {
			f.m++
			// Removing the fault delivers what it holds (the local
			// proxy's toxic is removed): a stall ends with the window.
			end := start + stall
			if d := f.spec.Duration.Duration; d > 0 {
				end = max(min(end, f.from+d), start)
			}
			f.sum += end - start
			if f.burst != nil {
				f.peak = max(f.peak, end-start)
				if end-start >= netproxy.LongStall {
					f.k++
				}
			}
			at = end
		}
	}
	if !ordered {
		return at
	}
	// Chunks are not always computed in the order they are sent (a
	// reconcile computes its requests ahead of the clock): only a chunk
	// sent no earlier than the last one computed queues behind it. One
	// sent earlier goes on without head-of-line blocking.
	sentLast, last := &fm.linkSent[link][dir][lane], &fm.linkLast[link][dir][lane]
	if t >= *sentLast {
		at = max(at, *last)
		*sentLast, *last = t, at
	}
	if conn != nil && dir == down {
		conn.arrival(at)
	}
	return at
}

// reorders reports whether writes can reach etcd out of their issue order:
// with a network fault on either link, a request's arrival depends on its
// path (a reconcile's later requests are issued ahead of the clock, and
// each crosses the operator's link). Then only writes to one object keep
// their order; else commits stay in issue order.
func (fm *faultModel) reorders() bool { return len(fm.links[linkAPIEtcd])+len(fm.links[linkOpAPI]) > 0 }

// commitOrder keeps the writes to one object in order: a write commits no
// earlier than the one before it to the same object.
func (fm *faultModel) commitOrder(key objKey, at time.Duration) time.Duration {
	if fm.lastCommit == nil {
		fm.lastCommit = map[objKey]time.Duration{}
	}
	at = max(at, fm.lastCommit[key])
	fm.lastCommit[key] = at
	return at
}

// ---- watcher-exhaustion --------------------------------------------------

// lockFree returns the first instant at or after t when etcd's store lock
// is free. While a watcher-exhaustion fault is on, etcd's sync loop runs
// every 100 ms from the window's start and holds the lock for the time it
// takes to replay the history to the unsynced watchers (churned watchers
// are re-created from an old revision, so they are always unsynced, and at
// most 512 are caught up per sync), give or take 20% per sync.
func (fm *faultModel) lockFree(t time.Duration) time.Duration {
	f := active(fm.watch)
	if f == nil || t < f.from {
		return t
	}
	tick := (t - f.from) / syncInterval
	start := f.from + tick*syncInterval
	// The hold of one sync depends on (seed, fault, tick) only, so queries
	// in any order agree.
	p := rand.NewPCG(fm.w.s.Seed^0x9e3779b97f4a7c15, uint64(f.i)<<40|uint64(tick))
	hold := f.hold * time.Duration(80+p.Uint64()%41) / 100
	if t >= start+hold {
		return t
	}
	f.n++
	f.sum += start + hold - t
	return start + hold
}

// ---- gc-assist-pressure --------------------------------------------------

// gcFree returns the first instant at or after t when the operator's
// goroutines can run. While gc-assist-pressure is on, every cycle of the
// map growth (1/rate) starts with a pause of the operator's worker and
// event handling (GC assists, the growth competing for the core, STW)
// drawn uniformly from 0.5–1.5 times entries × 60 ns (half that when the
// operator has more than one core), at most 60% of the cycle.
func (fm *faultModel) gcFree(t time.Duration) time.Duration {
	for _, f := range fm.gc {
		if !f.begun || t < f.from || (!f.on && t >= f.to) {
			continue
		}
		k := int((t - f.from) / f.period)
		start := f.from + time.Duration(k)*f.period
		if !f.on && start >= f.to {
			continue
		}
		for len(f.pauses) <= k {
			f.pauses = append(f.pauses, f.pauseBase/2+time.Duration(f.r.Int64N(int64(f.pauseBase)+1)))
		}
		if end := start + f.pauses[k]; t < end {
			f.n++
			f.sum += end - t
			return end
		}
	}
	return t
}

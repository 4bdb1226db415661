package virtual

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/history"
)

// ---- client-go's HTTP/2 health check -------------------------------------

// The operator.env variables the model reads: client-go's HTTP/2 health
// check (k8s.io/client-go/transport, golang.org/x/net/http2's ReadIdleTimeout
// and PingTimeout).
const (
	EnvReadIdleTimeout = "HTTP2_READ_IDLE_TIMEOUT_SECONDS"
	EnvPingTimeout     = "HTTP2_PING_TIMEOUT_SECONDS"
)

// client-go's defaults for the two.
const (
	DefaultReadIdleTimeout = 30 * time.Second
	DefaultPingTimeout     = 15 * time.Second
)

// healthCheck is the operator's HTTP/2 health check: after readIdle without
// a frame from kube-apiserver it sends a ping, and closes the connection
// when the ping's answer does not come within pingTimeout.
type healthCheck struct {
	readIdle, pingTimeout time.Duration
}

// healthCheckOf reads the health check from the scenario's operator.env:
// the two variables above (positive whole seconds), client-go's defaults
// for the ones not set. Any other variable is refused: the model has no
// process to give it to.
func healthCheckOf(s *scenarios.Scenario) (healthCheck, error) {
	hc := healthCheck{readIdle: DefaultReadIdleTimeout, pingTimeout: DefaultPingTimeout}
	env := s.Operator.Env
	if len(env) == 0 {
		return hc, nil
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		var dst *time.Duration
		switch k {
		case EnvReadIdleTimeout:
			dst = &hc.readIdle
		case EnvPingTimeout:
			dst = &hc.pingTimeout
		default:
			return hc, fmt.Errorf("virtual: scenario %s sets operator.env.%s, which the virtual backend does not model (it models only %s and %s, client-go's HTTP/2 health check; run it on the local backend)",
				s.Name, k, EnvReadIdleTimeout, EnvPingTimeout)
		}
		n, err := strconv.Atoi(strings.TrimSpace(env[k]))
		if err != nil || n <= 0 {
			return hc, fmt.Errorf("virtual: scenario %s: operator.env.%s is %q: want a positive whole number of seconds", s.Name, k, env[k])
		}
		*dst = time.Duration(n) * time.Second
	}
	return hc, nil
}

// errConnLost is what a request on a connection closed by the health check
// fails with (client-go's error, without the URL).
var errConnLost = errors.New("http2: client connection lost")

// h2conn is the operator's one HTTP/2 connection to kube-apiserver on the
// operator-apiserver link: client-go multiplexes every request and watch
// on it. It exists only when a fault is on that link (without one, nothing
// can delay a frame, so the health check never fires).
//
// Frames are modelled as the link's chunks in the down lane: watch events,
// answers, ping answers. Their arrival times are computed when they are
// sent, ahead of the clock, and keep their order in the lane (a chunk
// never arrives before one sent earlier). So when a chunk is computed, the
// lane is known to be silent between the last arrival (last) and this
// chunk's: walk pings in that silence as the health check would (a ping
// at last+readIdle, through the up lane, its answer through the down lane
// behind what was sent before it) and, when an answer would come after
// pingTimeout, decides the close then. With no chunk at all, a kernel
// event at last+readIdle (re-armed lazily) does the same. Only a chunk
// computed later but sent earlier than the last one (a reconcile runs
// ahead of the clock) could fall into such a silence; the model ignores
// that (it would be lost in a blackout as well).
type h2conn struct {
	fm *faultModel
	o  *operatorModel
	hc healthCheck
	// ping draws the losses of pings and their answers (its own stream,
	// so that pings shift no fault's draws).
	ping *rand.Rand

	open   bool
	gen    int           // connections closed so far: tells timers of an old one
	opened time.Duration // when the current one was opened
	// last is the latest arrival of a frame computed on the connection
	// (it can be ahead of the clock).
	last time.Duration
	// closing: the health check has decided to close the connection at
	// closeAt (the close event is scheduled).
	closing bool
	closeAt time.Duration
	armed   bool
	checkFn func()

	closed int // connections the health check closed
}

func newH2Conn(fm *faultModel, o *operatorModel, hc healthCheck) *h2conn {
	c := &h2conn{fm: fm, o: o, hc: hc, ping: fm.w.k.stream("h2/ping")}
	c.checkFn = c.check
	c.openAt(fm.w.k.now)
	return c
}

// openAt opens a new connection at t (a request on a closed connection
// dials a new one).
func (c *h2conn) openAt(t time.Duration) {
	c.open, c.closing, c.opened, c.last = true, false, t, t
	c.arm()
}

// use is called for each chunk the operator sends: on a closed connection
// it dials a new one.
func (c *h2conn) use(t time.Duration) {
	if !c.open {
		c.openAt(t)
	}
}

// arm schedules the health check's idle timer (at most one pending).
func (c *h2conn) arm() {
	if c.armed || !c.open || c.closing {
		return
	}
	c.armed = true
	k := c.fm.w.k
	c.fm.w.k.at(max(c.last+c.hc.readIdle, k.now), c.checkFn)
}

// check is the idle timer: a ping when nothing arrived for readIdle.
func (c *h2conn) check() {
	c.armed = false
	if !c.open || c.closing || c.fm.w.stopped {
		return
	}
	if now := c.fm.w.k.now; c.last+c.hc.readIdle <= now {
		c.walk(now + 1)
	}
	c.arm()
}

// arrival is called when a chunk is computed to arrive at at in the down
// lane of the operator's link.
func (c *h2conn) arrival(at time.Duration) {
	if !c.open || c.closing {
		return
	}
	c.walk(at)
	if !c.closing {
		c.last = max(c.last, at)
	}
}

// walk plays the health check through the silence from last to until:
// each ping that is answered in time is a frame; the first that is not
// closes the connection pingTimeout after it was sent.
func (c *h2conn) walk(until time.Duration) {
	for !c.closing {
		p := c.last + c.hc.readIdle
		if p >= until {
			return
		}
		ack := c.fm.pingCross(c, down, c.fm.pingCross(c, up, p))
		if ack <= p+c.hc.pingTimeout {
			c.last = max(c.last, ack)
			continue
		}
		c.closing, c.closeAt = true, p+c.hc.pingTimeout
		gen := c.gen
		c.fm.w.k.at(max(c.closeAt, c.fm.w.k.now), func() { c.close(gen) })
	}
}

// lostBy reports whether a request sent at t on the connection is lost:
// its connection closes before t (or had been decided to close by t).
func (c *h2conn) lostBy(t time.Duration) (at time.Duration, lost bool) {
	if !c.open {
		return 0, false
	}
	c.walk(t)
	if c.closing && c.closeAt < t {
		return c.closeAt, true
	}
	return 0, false
}

// close is the health check closing the connection: what was in flight on
// it is lost, every watch ends with an error.
func (c *h2conn) close(gen int) {
	if gen != c.gen || !c.open || c.fm.w.stopped {
		return
	}
	c.drop()
	c.closed++
	c.o.connectionLost()
}

// drop forgets the connection (closed, or its process died): the next one
// starts with empty lanes.
func (c *h2conn) drop() {
	c.open, c.closing = false, false
	c.gen++
	fm := c.fm
	for dir := range 2 {
		fm.linkSent[linkOpAPI][dir][laneRequest], fm.linkLast[linkOpAPI][dir][laneRequest] = 0, 0
	}
}

// pingCross returns when a ping (up) or its answer (down) sent at t
// arrives: behind what was sent before it in its lane, lost and resent as
// any chunk of the link (with the ping's own random stream), but without
// holding back what follows (a ping is a few bytes).
func (fm *faultModel) pingCross(c *h2conn, dir int, t time.Duration) time.Duration {
	at := t
	sentLast, last := fm.linkSent[linkOpAPI][dir][laneRequest], fm.linkLast[linkOpAPI][dir][laneRequest]
	if f := active(fm.links[linkOpAPI]); f != nil {
		at += f.spec.Latency.Duration
		start := at
		if f.burst != nil && t >= sentLast {
			start = max(start, last)
		}
		losses, stall := f.rto.Retransmit(c.ping, fm.burstFor(f), start-f.from)
		at = start
		if losses > 0 {
			end := start + stall
			if d := f.spec.Duration.Duration; d > 0 {
				end = max(min(end, f.from+d), start)
			}
			at = end
		}
	}
	if t >= sentLast {
		at = max(at, last)
	}
	return at
}

// ---- reflectors ----------------------------------------------------------

// client-go's reflector backoff (tools/cache/reflector.go: defaultBackoff*,
// wait.Backoff.DelayWithReset).
const (
	reflectorBackoffInit   = 800 * time.Millisecond
	reflectorBackoffMax    = 30 * time.Second
	reflectorBackoffReset  = 2 * time.Minute
	reflectorBackoffFactor = 2.0
	reflectorBackoffJitter = 1.0
)

// reflectorBackoffSteps is the reflector's wait.Backoff.Steps:
// ceil(max / init).
var reflectorBackoffSteps = int((reflectorBackoffMax + reflectorBackoffInit - 1) / reflectorBackoffInit)

// reflectorBackoff is apimachinery's backoffManager.Step over the
// reflector's wait.Backoff, on the virtual clock: each delay is the current
// step d jittered to d + U[0,1)·d; the step doubles up to 30 s (after which
// the delays are 30–60 s); the backoff starts over at 800 ms when more than
// 2 minutes have passed since it last started over (or since the
// reflector was made) — backoffManager's lastStart moves only then.
type reflectorBackoff struct {
	r         *rand.Rand
	d         time.Duration
	steps     int
	lastStart time.Duration
}

func newReflectorBackoff(r *rand.Rand, now time.Duration) *reflectorBackoff {
	b := &reflectorBackoff{r: r, lastStart: now}
	b.d, b.steps = reflectorBackoffInit, reflectorBackoffSteps
	return b
}

// next is the delay requested at now.
func (b *reflectorBackoff) next(now time.Duration) time.Duration {
	if now-b.lastStart > reflectorBackoffReset {
		b.d, b.steps, b.lastStart = reflectorBackoffInit, reflectorBackoffSteps, now
	}
	d := b.d
	if b.steps >= 1 {
		b.steps--
		next := time.Duration(float64(d) * reflectorBackoffFactor)
		if next > reflectorBackoffMax {
			next, b.steps = reflectorBackoffMax, 0
		}
		b.d = next
	}
	return d + time.Duration(b.r.Float64()*reflectorBackoffJitter*float64(d))
}

// Reflector states.
const (
	reflWatching = iota // its informer receives events
	reflWaiting         // blind, waiting for its backoff
	reflListing         // blind, its List in flight
)

// reflector is the state of one informer's reflector that outlives the
// informer objects a connection loss replaces: its backoff, what it is
// doing, and when and where its watch began.
type reflector struct {
	kind     objKind
	resource string // as watchtrace names it
	backoff  *reflectorBackoff
	state    int
	token    int // bumped when a List in flight is abandoned
	since    time.Duration
	rv       int64
	listRV   int64
}

func newReflector(k *kernel, kind objKind) *reflector {
	r := &reflector{kind: kind, resource: "pods"}
	if kind == kindCluster {
		r.resource = grClusters.Resource + "." + grClusters.Group
	}
	r.backoff = newReflectorBackoff(k.stream("reflector/"+r.resource), k.now)
	return r
}

func (o *operatorModel) informerOf(kind objKind) *informer {
	if kind == kindPod {
		return o.pods
	}
	return o.clusters
}

func (o *operatorModel) setInformer(inf *informer) {
	if inf.kind == kindPod {
		o.pods = inf
	} else {
		o.clusters = inf
	}
	o.client.clusters, o.client.pods = o.clusters, o.pods
}

// connectionLost ends every watch with an error, fails every List in
// flight, and each reflector waits its backoff before it lists again; its
// informer is blind until then.
func (o *operatorModel) connectionLost() {
	if o.down {
		return
	}
	w := o.w
	now := w.k.now
	for _, r := range o.refl {
		inf := o.informerOf(r.kind)
		switch r.state {
		case reflWatching:
			w.record(history.Record{T: now, Source: history.SourceOperator, Kind: history.KindWatchEnd, Resource: r.resource,
				Op: "connection-lost", Err: errConnLost.Error(), Detail: "resourceVersion=" + strconv.FormatInt(r.rv, 10),
				Metrics: map[string]float64{"duration_ms": ms(now - r.since), "events": float64(inf.events), "bookmarks": 0}})
			repl := inf.replacement()
			// A new watch on a new connection: nothing queues behind the
			// old one's lane.
			repl.blind, repl.last, repl.lastVia = true, now, now
			inf.dead = true
			o.setInformer(repl)
		case reflListing:
			w.record(history.Record{T: now, Source: history.SourceOperator, Kind: history.KindRelist, Resource: r.resource,
				Op: "list", Err: errConnLost.Error(), Detail: "resourceVersion=" + strconv.FormatInt(r.listRV, 10),
				Metrics: map[string]float64{"duration_ms": ms(now - r.since)}})
			r.token++
		default:
			continue // waiting: no request of it was on the connection
		}
		o.backOff(r)
	}
}

// backOff makes r wait its next delay, then list.
func (o *operatorModel) backOff(r *reflector) {
	r.state = reflWaiting
	epoch := o.epoch
	o.w.k.after(r.backoff.next(o.w.k.now), func() {
		if o.epoch == epoch {
			o.listStart(r)
		}
	})
}

// listStart sends r's List: it crosses the link like any request, on the
// current connection (a new one if it is closed).
func (o *operatorModel) listStart(r *reflector) {
	w, fm := o.w, o.w.faults
	if o.down || w.stopped {
		return
	}
	inf := o.informerOf(r.kind)
	now := w.k.now
	r.state, r.since, r.listRV = reflListing, now, inf.rv
	r.token++
	tok := r.token
	t := fm.gcFree(now)
	up := fm.cross(linkOpAPI, up, laneRequest, t)
	if _, lost := fm.conn.lostBy(up); lost {
		return // the close fails it (connectionLost)
	}
	at := fm.gcFree(fm.cross(linkOpAPI, down, laneRequest, up))
	if c := fm.conn; c.closing && c.closeAt < at {
		return
	}
	epoch := o.epoch
	w.k.at(at, func() {
		if o.epoch == epoch && r.token == tok && r.state == reflListing {
			o.listDone(r)
		}
	})
}

// listDone is the List's answer: the informer replays the difference to
// its cache and watches again.
func (o *operatorModel) listDone(r *reflector) {
	w := o.w
	inf := o.informerOf(r.kind)
	inf.relist(w.store)
	w.record(history.Record{T: w.k.now, Source: history.SourceOperator, Kind: history.KindRelist, Resource: r.resource,
		Op: "list", Detail: "resourceVersion=" + strconv.FormatInt(r.listRV, 10),
		Metrics: map[string]float64{"duration_ms": ms(w.k.now - r.since)}})
	inf.blind, inf.events = false, 0
	r.state, r.since, r.rv = reflWatching, w.k.now, inf.rv
}

// replacement is a new informer with i's cache and wiring, for a watch
// that replaces i's (i is then marked dead by the caller).
func (i *informer) replacement() *informer {
	repl := newInformer(i.k, i.kind, i.filter, i.delay)
	repl.objs, repl.rv, repl.seq, repl.listSeq, repl.handler, repl.via, repl.hist = i.objs, i.rv, i.seq, i.listSeq, i.handler, i.via, i.hist
	repl.members = i.members
	repl.withheld, repl.last, repl.lastVia = i.withheld, i.last, i.lastVia
	repl.blind = i.blind
	return repl
}

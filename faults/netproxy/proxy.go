package netproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

func init() {
	// toxiproxy's bandwidth toxic logs through zerolog's global logger, which
	// writes to stderr at trace level (zerolog's own init sets the global
	// level to trace), one line per interrupt. It cannot be routed per proxy,
	// so importing this package discards that global logger's output; no
	// other driftlab code uses it. Done in init, before any goroutine reads it.
	zlog.Logger = zerolog.Nop()
}

// Direction selects which data a fault applies to.
type Direction int

const (
	// Upstream is data from the client to the upstream server.
	Upstream Direction = 1 << iota
	// Downstream is data from the upstream server back to the client.
	Downstream
	// Both is Upstream and Downstream.
	Both = Upstream | Downstream
)

// String returns "upstream", "downstream" or "both".
func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

func (d Direction) streams() ([]stream.Direction, error) {
	switch d {
	case Upstream:
		return []stream.Direction{stream.Upstream}, nil
	case Downstream:
		return []stream.Direction{stream.Downstream}, nil
	case Both:
		return []stream.Direction{stream.Upstream, stream.Downstream}, nil
	}
	return nil, fmt.Errorf("netproxy: invalid direction %d", int(d))
}

// Kind names a fault type; at most one fault of each kind is active per
// direction, and setting it again replaces it.
type Kind string

// Fault kinds.
const (
	// KindRetransmit is the retransmit stall (SetRetransmit).
	KindRetransmit Kind = RetransmitToxicType
	// KindLatency is toxiproxy's latency toxic (SetLatency).
	KindLatency Kind = "latency"
	// KindBandwidth is toxiproxy's bandwidth toxic (SetBandwidth).
	KindBandwidth Kind = "bandwidth"
	// KindReset is toxiproxy's reset_peer toxic (ResetPeer).
	KindReset Kind = "reset_peer"
)

var nextID atomic.Uint64

// Proxy is a TCP proxy on 127.0.0.1 that forwards each accepted connection to
// one upstream address through toxiproxy toxic chains, one per direction.
// Its methods are safe for concurrent use. Faults apply to existing and new
// connections; changing them never breaks a connection (except ResetPeer and
// ResetConnections, whose purpose that is).
type Proxy struct {
	name     string
	upstream string
	seed     uint64
	id       uint64
	opts     Options
	shared   *proxyShared

	ln     net.Listener
	server *toxiproxy.ApiServer
	tp     *toxiproxy.Proxy
	ctx    context.Context // carries a discarding zerolog logger

	setMu sync.Mutex // serialises fault changes (remove+add must be atomic)

	mu     sync.Mutex
	closed bool
	conns  map[string][2]*net.TCPConn // link name prefix -> client, upstream
	// opened counts accepted connections, closedConns those that ended.
	opened, closedConns uint64
	handlers            sync.WaitGroup // accepted connections being set up

	dialCtx    context.Context // cancelled by Close: aborts upstream dials
	cancelDial context.CancelFunc
	acceptDone chan struct{}
}

// Options shape a proxy's connections; the zero value is a plain proxy.
type Options struct {
	// MSS, when set, is the TCP maximum segment size of the proxy's
	// sockets (TCP_MAXSEG, announced in the SYN): the peers then size
	// their socket buffers as on a network with that MSS. On loopback
	// the MSS is 64 KiB, so a kube-apiserver's send buffer autotunes to
	// megabytes and a stalled connection would hold seconds of watch
	// events before the sender notices; 1448 (Ethernet) gives the tens
	// of KiB of a real path.
	MSS int
	// ReadBuffer, when set, is SO_RCVBUF of the proxy's sockets: what the
	// proxy takes from a sender before its reads stop.
	ReadBuffer int
	// ShortQueue lets only ShortQueueChunks chunks queue behind a chunk
	// the retransmit fault stalls (instead of 1024), so a stall pushes
	// back on the sender, as a full TCP send buffer blocks its writer.
	ShortQueue bool
}

// New starts a proxy named name that listens on 127.0.0.1 (a free port, see
// Addr) and forwards to upstream (host:port). seed makes every random choice
// of the proxy's retransmit faults reproducible. toxiproxy's logs are
// discarded (see the package's init: zerolog's global logger, which
// toxiproxy's bandwidth toxic writes to, is replaced by a no-op logger when
// this package is imported).
func New(name, upstream string, seed uint64) (*Proxy, error) {
	return NewWithOptions(name, upstream, seed, Options{})
}

// NewWithOptions is New with options for the proxy's connections.
func NewWithOptions(name, upstream string, seed uint64, o Options) (*Proxy, error) {
	if o.MSS < 0 || o.ReadBuffer < 0 {
		return nil, errors.New("netproxy: negative option")
	}
	// Accepted sockets inherit the listener's options.
	lc := net.ListenConfig{Control: o.control}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netproxy: listen: %w", err)
	}
	nop := zerolog.New(io.Discard).Level(zerolog.Disabled)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), nop)
	tp := toxiproxy.NewProxy(server, name, ln.Addr().String(), upstream)
	// The toxiproxy.Proxy is never Start()ed: this package owns the listener
	// and the connections and only uses tp's ToxicCollection to run links.
	p := &Proxy{
		name:       name,
		upstream:   upstream,
		seed:       seed,
		id:         nextID.Add(1),
		opts:       o,
		shared:     new(proxyShared),
		ln:         ln,
		server:     server,
		tp:         tp,
		ctx:        zerolog.New(io.Discard).WithContext(context.Background()),
		conns:      map[string][2]*net.TCPConn{},
		acceptDone: make(chan struct{}),
	}
	p.dialCtx, p.cancelDial = context.WithCancel(context.Background())
	sharedRegistry.Store(p.id, p.shared)
	go p.accept()
	return p, nil
}

// Name returns the proxy's name.
func (p *Proxy) Name() string { return p.name }

// Addr returns the listening address, 127.0.0.1:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

func (p *Proxy) accept() {
	defer close(p.acceptDone)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed (Close) or fatal
		}
		p.handlers.Add(1)
		go p.handle(c.(*net.TCPConn))
	}
}

// handle dials the upstream for one accepted client (in its own goroutine,
// unlike toxiproxy's Proxy, whose accept loop waits for each dial) and starts
// the two links.
func (p *Proxy) handle(client *net.TCPConn) {
	defer p.handlers.Done()
	d := net.Dialer{Timeout: 10 * time.Second, Control: p.opts.control}
	up, err := d.DialContext(p.dialCtx, "tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	upc := up.(*net.TCPConn)
	name := client.RemoteAddr().String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		client.Close()
		upc.Close()
		return
	}
	p.pruneLocked()
	p.conns[name] = [2]*net.TCPConn{client, upc}
	p.opened++
	// Start the links under p.mu so Close cannot miss them. toxiproxy sets
	// SO_LINGER 0 itself when a reset_peer toxic is already in the chain.
	p.tp.Toxics.StartLink(p.server, name+"upstream", client, upc, stream.Upstream)
	p.tp.Toxics.StartLink(p.server, name+"downstream", upc, client, stream.Downstream)
}

// setLinger sets SO_LINGER on every tracked connection: 0 makes Close send a
// RST, -1 restores the default (FIN, data flushed in the background).
func (p *Proxy) setLinger(sec int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c[0].SetLinger(sec)
		_ = c[1].SetLinger(sec)
	}
}

// resetSetLocked reports whether a reset_peer toxic is set; setMu is held.
func (p *Proxy) resetSetLocked() bool {
	return p.tp.Toxics.GetToxic(toxicName(KindReset, stream.Upstream)) != nil ||
		p.tp.Toxics.GetToxic(toxicName(KindReset, stream.Downstream)) != nil
}

// linkNames returns the names of toxiproxy's running links, or nil if they
// cannot be read. toxiproxy v2.5.0 exports no way to learn when a link has
// finished, so this reads the unexported ToxicCollection.links map
// (read-only, under the collection's lock).
func (p *Proxy) linkNames() map[string]bool {
	tc := p.tp.Toxics
	tc.Lock()
	defer tc.Unlock()
	v := reflect.ValueOf(tc).Elem().FieldByName("links")
	if !v.IsValid() || v.Kind() != reflect.Map {
		return nil
	}
	names := make(map[string]bool, v.Len())
	for _, k := range v.MapKeys() {
		names[k.String()] = true
	}
	return names
}

// pruneLocked forgets connections whose links have both finished.
func (p *Proxy) pruneLocked() {
	names := p.linkNames()
	if names == nil {
		return
	}
	for n := range p.conns {
		if !names[n+"upstream"] && !names[n+"downstream"] {
			delete(p.conns, n)
			p.closedConns++
		}
	}
}

// Connections returns the number of proxied connections whose links are
// still running.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	return len(p.conns)
}

func toxicName(k Kind, d stream.Direction) string { return string(k) + "_" + d.String() }

// set replaces the toxic of kind k in each direction of dir.
func (p *Proxy) set(k Kind, dir Direction, attrs func(stream.Direction) any) error {
	return p.setTyped(k, string(k), dir, attrs)
}

// setTyped is set with the toxic type registered as typ.
func (p *Proxy) setTyped(k Kind, typ string, dir Direction, attrs func(stream.Direction) any) error {
	dirs, err := dir.streams()
	if err != nil {
		return err
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	for _, d := range dirs {
		name := toxicName(k, d)
		if p.tp.Toxics.GetToxic(name) != nil {
			if err := p.tp.Toxics.RemoveToxic(p.ctx, name); err != nil {
				return fmt.Errorf("netproxy: remove %s: %w", name, err)
			}
		}
		body, err := json.Marshal(map[string]any{
			"name":       name,
			"type":       typ,
			"stream":     d.String(),
			"toxicity":   1.0, // toxiproxy draws global math/rand against this; 1 means always
			"attributes": attrs(d),
		})
		if err != nil {
			return err
		}
		if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("netproxy: add %s: %w", name, err)
		}
	}
	return nil
}

// SetRetransmit sets (or replaces) the retransmit fault in dir: each chunk is
// lost with probability prob and delivered after one RTO stall per
// consecutive loss, the RTO starting at minRTO and doubling up to maxRTO (0
// means DefaultMinRTO, DefaultMaxRTO); see RetransmitModel. prob must be in
// [0, 1). A chunk is what one read on the sending side of the proxy
// returns (up to 32 KiB), not a TCP segment: a burst of data is one
// transmission, lost or not as a whole, and chunks behind a stalled one wait
// for it. The loss pattern is drawn from PCG(seed, stream(direction,
// connection number)), connections numbered from 0 in the order their links
// start (those already open when the fault is set are numbered in
// toxiproxy's unspecified order).
func (p *Proxy) SetRetransmit(dir Direction, prob float64, minRTO, maxRTO time.Duration) error {
	return p.SetRetransmitBursts(dir, prob, minRTO, maxRTO, nil, time.Time{})
}

// SetRetransmitBursts is SetRetransmit with bursty loss: while burst (nil:
// none) has a blackout, counted from origin, each transmission is lost
// with the burst's loss instead of prob (see RetransmitModel.Retransmit).
// The schedule is the proxy's, shared by both directions and every
// connection, as an outage of a link is. A chunk that waited behind a
// stalled one is first sent when the link delivered again.
func (p *Proxy) SetRetransmitBursts(dir Direction, prob float64, minRTO, maxRTO time.Duration, burst *BurstSchedule, origin time.Time) error {
	if !(prob >= 0 && prob < 1) {
		return fmt.Errorf("netproxy: retransmit probability %v not in [0, 1)", prob)
	}
	if minRTO < 0 || maxRTO < 0 {
		return errors.New("netproxy: negative RTO")
	}
	var ref *burstRef
	if burst != nil {
		ref = &burstRef{sched: burst, origin: origin}
	}
	p.shared.burst.Store(ref)
	typ := RetransmitToxicType
	if p.opts.ShortQueue {
		typ = shortQueueToxicType
	}
	err := p.setTyped(KindRetransmit, typ, dir, func(d stream.Direction) any {
		return &RetransmitToxic{P: prob, MinRTONs: int64(minRTO), MaxRTONs: int64(maxRTO),
			Seed: p.seed, Dir: uint8(d), ProxyID: p.id}
	})
	if ref != nil {
		// Links made from now on are connections opened during the fault
		// (burst.Established spares them the blackouts begun before).
		ref.added.Store(time.Now().UnixNano())
	}
	return err
}

// SetLatency sets (or replaces) toxiproxy's latency toxic in dir: each chunk
// is delivered latency (plus a uniform jitter in [-jitter, jitter)) after it
// entered the proxy. toxiproxy works in whole milliseconds, so both values
// are rounded to the millisecond, and it draws the jitter from the global
// math/rand, so jitter is not reproducible from the proxy's seed.
func (p *Proxy) SetLatency(dir Direction, latency, jitter time.Duration) error {
	if latency < 0 || jitter < 0 {
		return errors.New("netproxy: negative latency or jitter")
	}
	return p.set(KindLatency, dir, func(stream.Direction) any {
		return map[string]int64{"latency": latency.Round(time.Millisecond).Milliseconds(),
			"jitter": jitter.Round(time.Millisecond).Milliseconds()}
	})
}

// SetBandwidth sets (or replaces) toxiproxy's bandwidth toxic in dir,
// limiting each connection to kBps kilobytes (1000 bytes) per second.
func (p *Proxy) SetBandwidth(dir Direction, kBps int64) error {
	if kBps <= 0 {
		return errors.New("netproxy: bandwidth must be positive (use Remove to lift it)")
	}
	return p.set(KindBandwidth, dir, func(stream.Direction) any {
		return map[string]int64{"rate": kBps}
	})
}

// ResetPeer sets toxiproxy's reset_peer toxic in dir: when the next chunk
// arrives in that direction on a connection, the proxy waits after (whole
// milliseconds) and then closes the connection with a TCP RST (the client
// and the upstream side), discarding the chunk. It applies to open and new
// connections until removed (Remove(KindReset, dir) or Clear); new
// connections are then reset on their first data. Use ResetConnections to
// reset idle connections now.
func (p *Proxy) ResetPeer(dir Direction, after time.Duration) error {
	if after < 0 {
		return errors.New("netproxy: negative reset delay")
	}
	// toxiproxy sets SO_LINGER 0 (which makes Close send RST instead of FIN)
	// only when a link starts with reset_peer already in its chain; for open
	// connections we set it here, or the peer would see a clean EOF.
	p.setLinger(0)
	err := p.set(KindReset, dir, func(stream.Direction) any {
		return map[string]int64{"timeout": after.Milliseconds()}
	})
	if err != nil {
		p.setMu.Lock()
		if !p.resetSetLocked() {
			p.setLinger(-1)
		}
		p.setMu.Unlock()
	}
	return err
}

// ResetConnections resets every open connection now (TCP RST to the client
// and to the upstream). It returns the number of connections reset.
func (p *Proxy) ResetConnections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	n := 0
	for name, c := range p.conns {
		_ = c[0].SetLinger(0)
		_ = c[1].SetLinger(0)
		c[0].Close()
		c[1].Close()
		delete(p.conns, name)
		p.closedConns++
		n++
	}
	return n
}

// Remove removes the fault of kind k from dir; removing an absent fault is
// not an error. Data held by the removed toxic is delivered, not dropped
// (unless the receiver does not read it within 5 s: toxiproxy then drops it).
func (p *Proxy) Remove(k Kind, dir Direction) error {
	dirs, err := dir.streams()
	if err != nil {
		return err
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	for _, d := range dirs {
		name := toxicName(k, d)
		if p.tp.Toxics.GetToxic(name) == nil {
			continue
		}
		if err := p.tp.Toxics.RemoveToxic(p.ctx, name); err != nil {
			return fmt.Errorf("netproxy: remove %s: %w", name, err)
		}
	}
	if k == KindReset && !p.resetSetLocked() {
		p.setLinger(-1) // surviving connections close with FIN again
	}
	return nil
}

// Clear removes every fault in both directions: open connections keep
// working at full speed, and data a toxic was holding (a stalled or delayed
// chunk) is delivered at once.
func (p *Proxy) Clear() {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	reset := p.resetSetLocked()
	p.tp.Toxics.ResetToxics(p.ctx)
	if reset {
		p.setLinger(-1) // surviving connections close with FIN again
	}
}

// Faults lists the active faults as "kind_direction" names, for example
// "latency_upstream", in chain order per direction.
func (p *Proxy) Faults() []string {
	var out []string
	for _, t := range p.tp.Toxics.GetToxicArray() {
		if w, ok := t.(*toxics.ToxicWrapper); ok {
			out = append(out, w.Name)
		}
	}
	return out
}

// RetransmitStats returns what the retransmit fault has injected in dir
// (Upstream or Downstream) since New; Both sums the two (MaxStall is the
// longer one).
func (p *Proxy) RetransmitStats(dir Direction) RetransmitStats {
	s := &p.shared.stats
	switch dir {
	case Upstream:
		return s[stream.Upstream].snapshot()
	case Downstream:
		return s[stream.Downstream].snapshot()
	}
	a, b := s[stream.Upstream].snapshot(), s[stream.Downstream].snapshot()
	return RetransmitStats{Chunks: a.Chunks + b.Chunks, Retransmits: a.Retransmits + b.Retransmits, Stall: a.Stall + b.Stall,
		LongStalls: a.LongStalls + b.LongStalls, MaxStall: max(a.MaxStall, b.MaxStall)}
}

// ResetMaxStall starts RetransmitStats' MaxStall afresh in both
// directions, so that a fault window reports its own longest stall.
func (p *Proxy) ResetMaxStall() {
	for i := range p.shared.stats {
		p.shared.stats[i].maxStall.Store(0)
	}
}

// ConnStats counts the connections the proxy accepted since New, and those
// of them that have ended (both directions finished, or reset).
type ConnStats struct {
	Opened, Closed uint64
}

// ConnStats returns the proxy's connection counts.
func (p *Proxy) ConnStats() ConnStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	return ConnStats{Opened: p.opened, Closed: p.closedConns}
}

// Close stops accepting, removes all faults (flushing held data), half-closes
// every connection so in-flight data drains, then closes the connections and
// waits (up to a few seconds) for toxiproxy's link goroutines to finish. It
// is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	<-p.acceptDone
	p.cancelDial()
	p.handlers.Wait()

	// Remove toxics while the connections are still open, so stalled data is
	// flushed rather than stuck in a toxic whose writer has gone (toxiproxy's
	// own toxics block forever on their output in that case).
	cleared := make(chan struct{})
	go func() { p.Clear(); close(cleared) }()
	select {
	case <-cleared:
	case <-time.After(5 * time.Second): // a peer that never reads; give up flushing
	}

	p.mu.Lock()
	conns := p.conns
	p.conns = map[string][2]*net.TCPConn{}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c[0].CloseRead()
		_ = c[1].CloseRead()
	}
	p.waitLinks(time.Second)
	for _, c := range conns {
		c[0].Close()
		c[1].Close()
	}
	p.waitLinks(3 * time.Second)
	sharedRegistry.Delete(p.id)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (p *Proxy) waitLinks(d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		names := p.linkNames()
		if len(names) == 0 || time.Now().After(deadline) { // nil: unreadable, do not wait
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

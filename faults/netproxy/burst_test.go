package netproxy

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"
)

func testSchedule(t *testing.T, b Burst, seed uint64) *BurstSchedule {
	t.Helper()
	s, err := NewBurstSchedule(b, rand.New(rand.NewPCG(seed, 7)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBurstScheduleReplays checks that a schedule is a function of its
// seed alone (the same blackouts whatever order it is asked in), that
// another seed gives other blackouts, and that every blackout keeps to its
// bounds.
func TestBurstScheduleReplays(t *testing.T) {
	b := Burst{Every: 10 * time.Second, MinLength: time.Second, MaxLength: 3 * time.Second, Loss: 1}
	a, a2, other := testSchedule(t, b, 1), testSchedule(t, b, 1), testSchedule(t, b, 2)
	const end = 10 * time.Minute
	got := a.Blackouts(end)
	// Asked backwards, point by point, the twin agrees.
	for i := len(got) - 1; i >= 0; i-- {
		bo := got[i]
		if _, in := a2.At(bo.From); !in {
			t.Fatalf("blackout %d %v: its start is not in a blackout of the same seed's twin", i, bo)
		}
		if _, in := a2.At(bo.To); in && bo.To%b.Every != 0 {
			t.Fatalf("blackout %d %v: its end is still in a blackout", i, bo)
		}
	}
	if !slices.Equal(got, a2.Blackouts(end)) {
		t.Fatal("two schedules of one seed differ")
	}
	if slices.Equal(got, other.Blackouts(end)) {
		t.Fatal("seeds 1 and 2 give the same schedule")
	}
	if len(got) != int(end/b.Every) {
		t.Fatalf("%d blackouts in %v, want one per %v", len(got), end, b.Every)
	}
	var total time.Duration
	for k, bo := range got {
		period := time.Duration(k) * b.Every
		if bo.Len() < b.MinLength || bo.Len() > b.MaxLength || bo.From < period || bo.To > period+b.Every {
			t.Errorf("blackout %d %v (length %v) leaves its bounds", k, bo, bo.Len())
		}
		total += bo.Len()
	}
	// 60 lengths uniform on 1..3 s: the mean is 2 s give or take 0.2 s.
	if m := total / time.Duration(len(got)); m < 1800*time.Millisecond || m > 2200*time.Millisecond {
		t.Errorf("mean blackout %v, want about 2s", m)
	}
}

// TestBurstStallIsRTOBackoff checks Retransmit against TCP's timeline: a
// chunk first sent as a 2 s blackout begins is sent at 0, 0.2, 0.6, 1.4
// (all inside) and 3.0 s, so it stalls 3 s after four losses; one sent
// 1.9 s into it is lost once and stalls one RTO.
func TestBurstStallIsRTOBackoff(t *testing.T) {
	b := Burst{Every: 10 * time.Second, MinLength: 2 * time.Second, MaxLength: 2 * time.Second, Loss: 1}
	s := testSchedule(t, b, 3)
	bo := s.Blackouts(b.Every)[0]
	m := RetransmitModel{P: 0} // no loss outside the blackout
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		at     time.Duration
		losses int
		stall  time.Duration
	}{
		{bo.From, 4, 3 * time.Second},
		{bo.From + 1900*time.Millisecond, 1, 200 * time.Millisecond},
		{bo.From - time.Millisecond, 0, 0},
		{bo.To, 0, 0},
		// Sent 0.5 s in: 0.5, 0.7, 1.1, 1.9 inside, 3.5 outside.
		{bo.From + 500*time.Millisecond, 4, 3 * time.Second},
	} {
		losses, stall := m.Retransmit(rng, s, c.at)
		if losses != c.losses || stall != c.stall {
			t.Errorf("first sent %v into the window (blackout %v): %d losses, stall %v; want %d, %v", c.at, bo, losses, stall, c.losses, c.stall)
		}
	}
	// A partial loss inside draws one number per transmission, outside
	// (P 0) none: the same seed gives the same fates.
	half := testSchedule(t, Burst{Every: b.Every, MinLength: b.MinLength, MaxLength: b.MaxLength, Loss: 0.5}, 3)
	r1, r2 := rand.New(rand.NewPCG(9, 9)), rand.New(rand.NewPCG(9, 9))
	for i := range 100 {
		at := bo.From + time.Duration(i)*20*time.Millisecond
		l1, s1 := m.Retransmit(r1, half, at)
		l2, s2 := m.Retransmit(r2, half, at)
		if l1 != l2 || s1 != s2 {
			t.Fatalf("chunk %d: replay differs", i)
		}
	}
}

// TestBurstWithoutBurstIsIndependentLoss checks that Retransmit without a
// schedule draws what the independent-loss sampler always drew.
func TestBurstWithoutBurstIsIndependentLoss(t *testing.T) {
	m := RetransmitModel{P: 0.3, MinRTO: 20 * time.Millisecond}
	r1, r2 := lossRNG(5, 0, 0), lossRNG(5, 0, 0)
	for i := range 10000 {
		// The loop of the sampler before bursts existed.
		var want time.Duration
		rto := m.MinRTO
		for k := 0; k < MaxRetransmits && r2.Float64() < m.P; k++ {
			want += rto
			rto = min(2*rto, DefaultMaxRTO)
		}
		if _, got := m.Retransmit(r1, nil, 0); got != want {
			t.Fatalf("chunk %d: stall %v, the independent sampler %v", i, got, want)
		}
	}
}

func TestBurstValidate(t *testing.T) {
	ok := Burst{Every: time.Second, MinLength: 100 * time.Millisecond, MaxLength: 200 * time.Millisecond, Loss: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []Burst{
		{Every: 0, MinLength: 1, MaxLength: 1, Loss: 1},
		{Every: time.Second, MinLength: 0, MaxLength: 1, Loss: 1},
		{Every: time.Second, MinLength: 2, MaxLength: 1, Loss: 1},
		{Every: time.Second, MinLength: 1, MaxLength: time.Second, Loss: 1},
		{Every: time.Second, MinLength: 1, MaxLength: 2, Loss: 0},
		{Every: time.Second, MinLength: 1, MaxLength: 2, Loss: 1.5},
	} {
		if b.Validate() == nil {
			t.Errorf("%+v: valid, want an error", b)
		}
	}
}

// TestBurstFreezesProxy sends one chunk through a proxy as a blackout
// begins: at RTOs of 20 ms it is sent at 0, 20, 60, 140 ms (inside a
// 200 ms blackout) and 300 ms, so the echo comes back after at least
// 300 ms; the stats count the four losses and the stall.
func TestBurstFreezesProxy(t *testing.T) {
	b := Burst{Every: 10 * time.Second, MinLength: 200 * time.Millisecond, MaxLength: 200 * time.Millisecond, Loss: 1}
	s := testSchedule(t, b, 4)
	bo := s.Blackouts(b.Every)[0]
	echo := startEcho(t)
	p := newProxy(t, echo.Addr(), 1)
	c := dial(t, p.Addr())
	_, baseMedian := baseline(t, c)
	const minRTO = 20 * time.Millisecond
	// The window's time zero is placed so that the blackout starts now.
	if err := p.SetRetransmitBursts(Upstream, 0, minRTO, 0, s, time.Now().Add(-bo.From)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	// The chunk enters the toxic up to 60 ms into the blackout and still
	// sees the same four losses (a later start would lose fewer).
	if want := 300 * time.Millisecond; el < want || el > want+baseMedian+100*time.Millisecond {
		t.Errorf("echo after %v, want the 300 ms of an RTO backoff across a 200 ms blackout", el)
	}
	st := p.RetransmitStats(Both)
	if st.Retransmits != 4 || st.Stall != 300*time.Millisecond || st.MaxStall != 300*time.Millisecond {
		t.Errorf("stats %+v, want 4 retransmits and one 300 ms stall", st)
	}
	if cs := p.ConnStats(); cs.Opened != 1 || cs.Closed != 0 {
		t.Errorf("connections %+v, want 1 opened, 0 closed", cs)
	}
	t.Logf("one chunk across a %v blackout: echo after %v; %+v", bo.Len(), el, st)
}

// TestBackpressure: while a blackout stalls the upstream direction, a
// proxy with a real path's buffers (MSS 1448, 64 KiB receive buffers, four
// queued chunks) stops taking data once the sender's socket buffer is
// full (at most tcp_wmem's 4 MiB; 1.4 MiB for a sender that writes as
// fast as it can), so the sender's writes block; a plain proxy queues 1024
// chunks of up to 32 KiB.
func TestBackpressure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a sink upstream
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	b := Burst{Every: 10 * time.Second, MinLength: 5 * time.Second, MaxLength: 5 * time.Second, Loss: 1}
	s := testSchedule(t, b, 5)
	bo := s.Blackouts(b.Every)[0]
	accepted := func(o Options) int {
		p, err := NewWithOptions(t.Name(), ln.Addr().String(), 1, o)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := dial(t, p.Addr())
		defer c.Close()
		if err := p.SetRetransmitBursts(Upstream, 0, 20*time.Millisecond, 0, s, time.Now().Add(-bo.From)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16<<10)
		n := 0
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		for n < 64<<20 {
			k, err := c.Write(buf)
			n += k
			if err != nil {
				break
			}
		}
		p.Clear()
		return n
	}
	plain, bounded := accepted(Options{}), accepted(Options{MSS: 1448, ReadBuffer: 64 << 10, ShortQueue: true})
	t.Logf("written in 500 ms of a blackout: plain proxy %d KiB, with backpressure %d KiB", plain>>10, bounded>>10)
	if bounded > 5<<20 || plain < 4*bounded {
		t.Errorf("backpressure: %d bytes taken during a stall, a plain proxy %d; want under 5 MiB and a quarter of the plain proxy's", bounded, plain)
	}
}

// TestStallCutByRemoval: a chunk stalled by a blackout longer than the
// fault's window is delivered when the fault is removed, and the stats
// count the stall it had (not the one planned) and the losses whose
// timers had fired.
func TestStallCutByRemoval(t *testing.T) {
	b := Burst{Every: time.Minute, MinLength: 30 * time.Second, MaxLength: 30 * time.Second, Loss: 1}
	s := testSchedule(t, b, 6)
	bo := s.Blackouts(b.Every)[0]
	echo := startEcho(t)
	p := newProxy(t, echo.Addr(), 1)
	c := dial(t, p.Addr())
	baseline(t, c)
	if err := p.SetRetransmitBursts(Upstream, 0, 20*time.Millisecond, 0, s, time.Now().Add(-bo.From)); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // timers at 20, 60, 140, 300 ms fired; the next at 620 ms
	p.Clear()
	cleared := time.Since(wrote) // a busy machine may oversleep: the bounds follow what happened
	buf := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("the stalled chunk was not delivered when the fault was removed: %v", err)
	}
	delivered := time.Since(wrote)
	// The losses whose timers had fired by the removal: 20 ms doubling,
	// fired at 20, 60, 140, 300, 620, 1260 ms... after the chunk's entry.
	fired := 0
	for at, rto := 20*time.Millisecond, 20*time.Millisecond; at <= cleared; at += rto {
		fired++
		rto *= 2
	}
	st := p.RetransmitStats(Both)
	if st.Retransmits < 4 || st.Retransmits > uint64(fired) || st.Stall < 450*time.Millisecond || st.Stall > delivered || st.MaxStall != st.Stall {
		t.Errorf("stats %+v (removed %v, delivered %v after the write): want 4 to %d losses and a stall that ended with the removal, not the 30 s planned", st, cleared, delivered, fired)
	}
}

// TestEstablishedBurstSparesNewConnections: with Established, a blackout
// loses what the connections open when it began send, while a connection
// opened during it passes; without, the new connection is lost in the
// same blackout. Counted in losses (the stats), not in time.
func TestEstablishedBurstSparesNewConnections(t *testing.T) {
	for _, established := range []bool{true, false} {
		t.Run(fmt.Sprintf("established=%v", established), func(t *testing.T) {
			b := Burst{Every: 10 * time.Second, MinLength: 2 * time.Second, MaxLength: 2 * time.Second, Loss: 1, Established: established}
			s := testSchedule(t, b, 4)
			bo := s.Blackouts(b.Every)[0]
			echo := startEcho(t)
			p := newProxy(t, echo.Addr(), 1)
			old := dial(t, p.Addr())
			baseline(t, old)
			const minRTO = 20 * time.Millisecond
			if err := p.SetRetransmitBursts(Upstream, 0, minRTO, 0, s, time.Now().Add(-bo.From)); err != nil {
				t.Fatal(err)
			}
			// The old connection's chunk is sent into the blackout; the
			// new one is opened after it began and sends at once.
			if _, err := old.Write([]byte("o")); err != nil {
				t.Fatal(err)
			}
			fresh := dial(t, p.Addr())
			if _, err := fresh.Write([]byte("n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := io.ReadFull(fresh, buf); err != nil {
				t.Fatal(err)
			}
			freshLosses := p.RetransmitStats(Both).Retransmits
			if _, err := io.ReadFull(old, buf); err != nil {
				t.Fatal(err)
			}
			all := p.RetransmitStats(Both).Retransmits
			t.Logf("losses: the new connection's chunk (and the old one's, if delivered first) %d; both %d", freshLosses, all)
			// The old chunk is sent at 0, 20, 60, ... 1260 ms inside the
			// 2 s blackout: seven losses, whatever the flag.
			oldLosses := uint64(7)
			if established {
				if all != oldLosses {
					t.Errorf("%d losses, want only the old connection's %d: the new connection was caught by a blackout that began before it", all, oldLosses)
				}
			} else if all <= oldLosses {
				t.Errorf("%d losses, want more than the old connection's %d: without established the blackout darkens the new connection too", all, oldLosses)
			}
		})
	}
}

// ForConn: with Established, a blackout touches a connection only if the
// connection was open when it began.
func TestBurstForConn(t *testing.T) {
	b := Burst{Every: 10 * time.Second, MinLength: 2 * time.Second, MaxLength: 3 * time.Second, Loss: 1, Established: true}
	s := testSchedule(t, b, 3)
	bo := s.Blackouts(b.Every)[0]
	mid := bo.From + bo.Len()/2
	if _, in := s.ForConn(bo.From).At(mid); !in {
		t.Errorf("a connection opened as the blackout began is not in it")
	}
	if _, in := s.ForConn(bo.From + 1).At(mid); in {
		t.Errorf("a connection opened during the blackout is in it")
	}
	if next := s.Blackouts(2 * b.Every)[1]; func() bool { _, in := s.ForConn(bo.From + 1).At(next.From); return !in }() {
		t.Errorf("the next blackout spares a connection open when it began")
	}
	plain := b
	plain.Established = false
	ps := testSchedule(t, plain, 3)
	if _, in := ps.ForConn(bo.From + 1).At(mid); !in {
		t.Errorf("without established a blackout spares a new connection")
	}
}

// TestClearAfterDeadFlow: a client that gave up on a connection stalled by
// an established-flows blackout (as an HTTP/2 health check does) closes
// it; clearing the fault afterwards must not wait on the dead connection's
// stalled data (toxiproxy waits 5 s for each chunk nobody reads), so that
// a fault window ends on time and Ctrl-C stops a run at once.
func TestClearAfterDeadFlow(t *testing.T) {
	// A server that streams to its client all the time, as kube-apiserver
	// streams watch events.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				go func() { _, _ = io.Copy(io.Discard, c) }()
				buf := make([]byte, 2048)
				for {
					select {
					case <-done:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	for _, short := range []bool{true, false} {
		t.Run(fmt.Sprintf("shortQueue=%v", short), func(t *testing.T) {
			p, err := NewWithOptions(t.Name(), ln.Addr().String(), 1, Options{ShortQueue: short, MSS: 1448, ReadBuffer: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			b := Burst{Every: 100 * time.Second, MinLength: 60 * time.Second, MaxLength: 60 * time.Second, Loss: 1, Established: true}
			s := testSchedule(t, b, 5)
			bo := s.Blackouts(b.Every)[0]
			var conns []net.Conn
			for range 3 {
				c := dial(t, p.Addr())
				go func() { _, _ = io.Copy(io.Discard, c) }()
				conns = append(conns, c)
			}
			time.Sleep(50 * time.Millisecond)
			if err := p.SetRetransmitBursts(Both, 0, 0, 0, s, time.Now().Add(-bo.From)); err != nil {
				t.Fatal(err)
			}
			for _, c := range conns {
				_, _ = c.Write([]byte("ping"))
			}
			time.Sleep(300 * time.Millisecond) // the streams stall, the queues fill
			for _, c := range conns {
				c.Close() // the client gave up on the dead flow
			}
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			p.Clear()
			el := time.Since(start)
			t.Logf("Clear took %v with %d dead connections", el, len(conns))
			// toxiproxy's own timeout is 5 s for each chunk it cannot hand on.
			if el >= 4*time.Second {
				t.Errorf("Clear took %v: it waited on the dead connections' stalled data", el)
			}
		})
	}
}

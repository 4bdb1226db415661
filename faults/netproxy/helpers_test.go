package netproxy

import (
	"io"
	"math"
	"net"
	"sort"
	"sync"
	"testing"
	"time"
)

// echoServer serves TCP echo on 127.0.0.1 until the test ends.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startEcho(t testing.TB) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *echoServer) Addr() string { return s.ln.Addr().String() }

func (s *echoServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func newProxy(t testing.TB, upstream string, seed uint64) *Proxy {
	t.Helper()
	p, err := New(t.Name(), upstream, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrips sends n requests of size bytes on c, each waiting for its echo,
// and returns the duration of each round trip.
func roundTrips(t testing.TB, c net.Conn, n, size int) []time.Duration {
	t.Helper()
	req := make([]byte, size)
	resp := make([]byte, size)
	out := make([]time.Duration, n)
	for i := range n {
		req[0] = byte(i)
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			t.Fatalf("round trip %d: write: %v", i, err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatalf("round trip %d: read: %v", i, err)
		}
		out[i] = time.Since(start)
		if resp[0] != byte(i) {
			t.Fatalf("round trip %d: got reply %d", i, resp[0])
		}
	}
	return out
}

func mean(d []time.Duration) time.Duration {
	var s float64
	for _, x := range d {
		s += float64(x)
	}
	return time.Duration(s / float64(len(d)))
}

// quantile is the smallest sample x with at least a q fraction of samples <= x.
func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// within reports whether got is within rel (relative) or abs of want.
func within(got, want time.Duration, rel float64, abs time.Duration) bool {
	diff := math.Abs(float64(got - want))
	return diff <= rel*math.Abs(float64(want)) || diff <= float64(abs)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

package netproxy

import (
	"io"
	"testing"
	"time"
)

// BenchmarkInjectedVsMeasured reports, per fault, the delay injected per
// round trip, the delay measured by a request/response client (round trip
// minus the fault-free baseline) and their ratio (1 is exact):
//
//	go test ./faults/netproxy -run '^$' -bench InjectedVsMeasured -benchtime 200x
func BenchmarkInjectedVsMeasured(b *testing.B) {
	run := func(b *testing.B, set func(*Proxy) error, injected func(p *Proxy, n int) time.Duration) {
		echo := startEcho(b)
		p := newProxy(b, echo.Addr(), 1)
		c := dial(b, p.Addr())
		baseMean, _ := baseline(b, c)
		if err := set(p); err != nil {
			b.Fatal(err)
		}
		req, resp := make([]byte, reqSize), make([]byte, reqSize)
		n := 0
		start := time.Now()
		for b.Loop() {
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, resp); err != nil {
				b.Fatal(err)
			}
			n++
		}
		measured := time.Since(start)/time.Duration(n) - baseMean
		inj := injected(p, n)
		b.ReportMetric(ms(inj), "injected-ms/op")
		b.ReportMetric(ms(measured), "measured-ms/op")
		if inj > 0 {
			b.ReportMetric(float64(measured)/float64(inj), "measured/injected")
		}
	}
	for _, lat := range []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("latency="+lat.String(), func(b *testing.B) {
			run(b, func(p *Proxy) error { return p.SetLatency(Downstream, lat, 0) },
				func(*Proxy, int) time.Duration { return lat })
		})
	}
	b.Run("retransmit/P=0.1,MinRTO=20ms", func(b *testing.B) {
		run(b, func(p *Proxy) error { return p.SetRetransmit(Both, 0.1, 20*time.Millisecond, 0) },
			func(p *Proxy, n int) time.Duration { return p.RetransmitStats(Both).Stall / time.Duration(n) })
	})
}

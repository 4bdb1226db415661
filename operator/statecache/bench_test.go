package statecache

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/driftlab/driftlab/faults/gcpressure"
)

// Shape of the chapter 2.5 measurement: one cluster of benchMembers
// members (the write-up's rand.Intn(1000) keys), benchReaders goroutines
// reading single members and benchWriters goroutines storing newer
// revisions, all at once.
const (
	benchMembers = 1000
	benchReaders = 4
	benchWriters = 2
)

// BenchmarkCacheLatency is the write-up's chapter 2.5 experiment done for
// real: every cache variant under concurrent readers and writers, with and
// without GC-assist pressure (faults/gcpressure: a map[int][256]byte of
// 200,000 entries grown and copied 4 times a second in the same process).
// Every operation is timed into an HdrHistogram; it reports p50/p99/max
// read and write latency in µs, allocations per write and per read
// (measured without pressure), and GC CPU as a share of wall time and GC
// assist CPU seconds per wall second (runtime/metrics). `make bench-cache`
// runs it several times and prints the table of medians (scripts/benchtable).
func BenchmarkCacheLatency(b *testing.B) {
	for _, pressure := range []bool{false, true} {
		for _, v := range []string{VariantMap, VariantPtrMap, VariantSyncMap, VariantSnapshot, VariantArena} {
			name := fmt.Sprintf("variant=%s/gc=%s", v, map[bool]string{false: "off", true: "pressure"}[pressure])
			b.Run(name, func(b *testing.B) { benchLatency(b, v, pressure) })
		}
	}
}

func benchLatency(b *testing.B, variant string, pressure bool) {
	c, err := New(variant)
	if err != nil {
		b.Fatal(err)
	}
	var rev atomic.Uint64
	pod := func(ord int) string { return fmt.Sprintf("kv-%d", ord) }
	pods := make([]string, benchMembers)
	for i := range pods {
		pods[i] = pod(i)
		c.Observe("kv", i, Member{Revision: rev.Add(1), Pod: pods[i]})
	}
	// Allocations of one operation, alone, before the clock starts.
	allocWrite := testing.AllocsPerRun(1000, func() {
		n := rev.Add(1)
		c.Observe("kv", int(n%benchMembers), Member{Revision: n, Ready: n%2 == 0, Pod: pods[n%benchMembers]})
	})
	allocRead := testing.AllocsPerRun(1000, func() { c.Get("kv", int(rev.Load()%benchMembers)) })

	var p *gcpressure.Pressure
	if pressure {
		p = gcpressure.Start(gcpressure.Config{Entries: 200000, Rate: 4})
		time.Sleep(300 * time.Millisecond) // let the first cycles start
	}
	before := gcpressure.Read()
	reads := make([]*hdrhistogram.Histogram, benchReaders)
	writes := make([]*hdrhistogram.Histogram, benchWriters)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range benchWriters {
		h := hdrhistogram.New(1, 10_000_000_000, 3)
		writes[w] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range b.N {
				ord := r.IntN(benchMembers)
				n := rev.Add(1)
				t0 := time.Now()
				c.Observe("kv", ord, Member{Revision: n, Ready: n%2 == 0, Pod: pods[ord]})
				h.RecordValue(int64(time.Since(t0)))
			}
		}()
	}
	for rd := range benchReaders {
		h := hdrhistogram.New(1, 10_000_000_000, 3)
		reads[rd] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 3))
			for range b.N {
				ord := r.IntN(benchMembers)
				t0 := time.Now()
				m, ok := c.Get("kv", ord)
				h.RecordValue(int64(time.Since(t0)))
				if !ok || m.Pod != pods[ord] {
					panic(fmt.Sprintf("member %d: %+v %v", ord, m, ok))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	gc := gcpressure.Sub(before, gcpressure.Read())
	if p != nil {
		p.Stop()
	}
	rh, wh := merge(reads), merge(writes)
	us := func(h *hdrhistogram.Histogram, q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	b.ReportMetric(us(rh, 50), "read-p50-µs")
	b.ReportMetric(us(rh, 99), "read-p99-µs")
	b.ReportMetric(float64(rh.Max())/1e3, "read-max-µs")
	b.ReportMetric(us(wh, 50), "write-p50-µs")
	b.ReportMetric(us(wh, 99), "write-p99-µs")
	b.ReportMetric(float64(wh.Max())/1e3, "write-max-µs")
	b.ReportMetric(allocWrite, "allocs/write")
	b.ReportMetric(allocRead, "allocs/read")
	b.ReportMetric(100*gc.GCCPU/elapsed.Seconds(), "gc-cpu-%")
	b.ReportMetric(gc.AssistCPU/elapsed.Seconds(), "assist-cpu-s/s")
}

func merge(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	out := hdrhistogram.New(1, 10_000_000_000, 3)
	for _, h := range hs {
		out.Merge(h)
	}
	return out
}

package gcpressure

import (
	"encoding/binary"
	"math"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets the pressure.
type Config struct {
	// Entries is how many entries each cycle inserts into a fresh map.
	Entries int
	// Rate is cycles per second.
	Rate float64
}

// Pressure is a running pressure goroutine.
type Pressure struct {
	stop   chan struct{}
	done   chan struct{}
	cycles atomic.Int64
	bytes  atomic.Int64
	keep   map[int][256]byte // the live copy, kept reachable
	once   sync.Once
}

// Start starts the pressure goroutine.
func Start(cfg Config) *Pressure {
	if cfg.Entries <= 0 {
		cfg.Entries = 200000
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 4
	}
	p := &Pressure{stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop(cfg)
	return p
}

func (p *Pressure) loop(cfg Config) {
	defer close(p.done)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	next := time.Now()
	for {
		p.cycle(cfg.Entries)
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-p.stop:
				return
			case <-time.After(d):
			}
		} else {
			select {
			case <-p.stop:
				return
			default:
				next = time.Now() // running late: do not pile up
			}
		}
	}
}

// cycle grows a map from empty and copies it, as the write-up's cache does
// when it is rebuilt.
func (p *Pressure) cycle(n int) {
	m := map[int][256]byte{}
	var v [256]byte
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint64(v[:], uint64(i))
		m[i] = v
	}
	cp := make(map[int][256]byte)
	for k, val := range m {
		cp[k] = val
	}
	p.keep = cp
	p.cycles.Add(1)
	p.bytes.Add(int64(2 * n * (256 + 8)))
}

// Cycles returns how many grow-and-copy cycles ran.
func (p *Pressure) Cycles() int64 { return p.cycles.Load() }

// Stop ends the pressure and drops the map.
func (p *Pressure) Stop() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	p.keep = nil
}

// Sample is a reading of the runtime metrics that show GC pressure.
type Sample struct {
	// At is when the sample was taken.
	At time.Time `json:"at"`
	// AssistCPU is cumulative GC mark-assist CPU seconds.
	AssistCPU float64 `json:"gc_assist_cpu_seconds"`
	// GCCPU is cumulative total GC CPU seconds.
	GCCPU float64 `json:"gc_total_cpu_seconds"`
	// GCCycles is the number of completed GC cycles.
	GCCycles uint64 `json:"gc_cycles"`
	// HeapBytes is the live heap objects' size.
	HeapBytes uint64 `json:"heap_bytes"`
	// Sched is the cumulative scheduling-latency histogram.
	Sched *metrics.Float64Histogram `json:"-"`
}

var names = []string{
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/total:cpu-seconds",
	"/gc/cycles/total:gc-cycles",
	"/gc/heap/objects:bytes",
	"/sched/latencies:seconds",
}

// Read samples the runtime metrics now.
func Read() Sample {
	ss := make([]metrics.Sample, len(names))
	for i, n := range names {
		ss[i].Name = n
	}
	metrics.Read(ss)
	s := Sample{At: time.Now()}
	for _, m := range ss {
		switch m.Name {
		case names[0]:
			s.AssistCPU = floatOf(m.Value)
		case names[1]:
			s.GCCPU = floatOf(m.Value)
		case names[2]:
			s.GCCycles = uintOf(m.Value)
		case names[3]:
			s.HeapBytes = uintOf(m.Value)
		case names[4]:
			if m.Value.Kind() == metrics.KindFloat64Histogram {
				s.Sched = m.Value.Float64Histogram()
			}
		}
	}
	return s
}

func floatOf(v metrics.Value) float64 {
	if v.Kind() == metrics.KindFloat64 {
		return v.Float64()
	}
	return 0
}

func uintOf(v metrics.Value) uint64 {
	if v.Kind() == metrics.KindUint64 {
		return v.Uint64()
	}
	return 0
}

// Delta is what happened between two samples.
type Delta struct {
	Seconds float64 `json:"seconds"`
	// AssistCPU and GCCPU are CPU seconds spent in the window.
	AssistCPU float64 `json:"gc_assist_cpu_seconds"`
	GCCPU     float64 `json:"gc_total_cpu_seconds"`
	GCCycles  uint64  `json:"gc_cycles"`
	// SchedP50, SchedP99 and SchedMax are scheduling latencies in the window,
	// in seconds (bucket upper bounds).
	SchedP50    float64 `json:"sched_latency_p50_seconds"`
	SchedP99    float64 `json:"sched_latency_p99_seconds"`
	SchedMax    float64 `json:"sched_latency_max_seconds"`
	SchedEvents uint64  `json:"sched_events"`
	// SchedSlow counts goroutine scheduling delays of 1 ms or more: the
	// stalls GC assists and GC workers cause, which a p99 over many
	// sub-microsecond wake-ups hides.
	SchedSlow uint64 `json:"sched_slow_events"`
}

// Sub returns the change from an earlier sample a to b.
func Sub(a, b Sample) Delta {
	d := Delta{
		Seconds:   b.At.Sub(a.At).Seconds(),
		AssistCPU: b.AssistCPU - a.AssistCPU,
		GCCPU:     b.GCCPU - a.GCCPU,
		GCCycles:  b.GCCycles - a.GCCycles,
	}
	if a.Sched == nil || b.Sched == nil || len(a.Sched.Counts) != len(b.Sched.Counts) {
		return d
	}
	counts := make([]uint64, len(b.Sched.Counts))
	for i := range counts {
		counts[i] = b.Sched.Counts[i] - a.Sched.Counts[i]
		d.SchedEvents += counts[i]
	}
	for i, c := range counts {
		if b.Sched.Buckets[i] >= 1e-3 {
			d.SchedSlow += c
		}
	}
	d.SchedP50 = quantile(counts, b.Sched.Buckets, d.SchedEvents, 0.50)
	d.SchedP99 = quantile(counts, b.Sched.Buckets, d.SchedEvents, 0.99)
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			d.SchedMax = upper(b.Sched.Buckets, i)
			break
		}
	}
	return d
}

func quantile(counts []uint64, buckets []float64, total uint64, q float64) float64 {
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i, c := range counts {
		acc += c
		if acc >= want {
			return upper(buckets, i)
		}
	}
	return upper(buckets, len(counts)-1)
}

// upper is bucket i's upper bound (Buckets has len(Counts)+1 boundaries).
func upper(buckets []float64, i int) float64 {
	u := buckets[i+1]
	if math.IsInf(u, 1) {
		return buckets[i]
	}
	return u
}

// Package gcpressure reproduces the incident write-up's chapter 2 runtime
// effect inside a process: a goroutine that grows a map[int][256]byte from
// empty (so the runtime keeps growing and evacuating its buckets) and copies
// it, at a configured size and rate, keeping the latest copy alive. The
// allocation rate drives the garbage collector into mark assists, which
// steal time from the goroutines that allocate, and the extra GC work delays
// the scheduling of everything else.
//
// Sample reads the runtime/metrics that show the effect: GC assist CPU time
// (/cpu/classes/gc/mark/assist:cpu-seconds), total GC CPU time and the
// scheduling latency histogram (/sched/latencies:seconds). The reference
// operator runs Pressure when the harness tells it to, and reports Samples
// at fault boundaries.
package gcpressure

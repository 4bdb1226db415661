// Command benchtable reads `go test -bench BenchmarkCacheLatency -count N`
// output on standard input and prints the chapter 2.5 table as Markdown:
// for every cache variant, with and without GC pressure, the median over
// the N runs of each reported metric, and each variant's p99 as a ratio of
// the map variant's p99 under the same GC condition (with the min–max of
// that ratio over the runs). `make bench-cache` pipes the benchmark into it.
package main

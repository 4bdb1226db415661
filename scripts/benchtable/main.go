package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^BenchmarkCacheLatency/variant=(\w+)/gc=(\w+)-\d+\s+\d+\s+(.*)$`)

type key struct{ variant, gc string }

func main() {
	runs := map[key][]map[string]float64{}
	var order []key
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		k := key{m[1], m[2]}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		f := strings.Fields(m[3])
		vals := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				vals[f[i+1]] = v
			}
		}
		runs[k] = append(runs[k], vals)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no BenchmarkCacheLatency lines on standard input")
		os.Exit(1)
	}
	med := func(k key, metric string) float64 {
		var xs []float64
		for _, r := range runs[k] {
			xs = append(xs, r[metric])
		}
		return median(xs)
	}
	// ratio of k's metric to map's, run by run (same run index).
	ratios := func(k key, metric string) (mid, lo, hi float64) {
		base := runs[key{"map", k.gc}]
		var xs []float64
		for i, r := range runs[k] {
			if i < len(base) && base[i][metric] > 0 {
				xs = append(xs, r[metric]/base[i][metric])
			}
		}
		if len(xs) == 0 {
			return 0, 0, 0
		}
		return median(xs), slices.Min(xs), slices.Max(xs)
	}
	fmt.Printf("medians of %d runs; latency in µs; ratio = p99 / map's p99 under the same GC condition, run by run (median, min–max)\n\n", len(runs[order[0]]))
	fmt.Println("| cache | GC | read p50 | read p99 | read max | write p50 | write p99 | write max | write p99 vs map | read p99 vs map | allocs/write | allocs/read | GC CPU % | assist CPU s/s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		wr, wlo, whi := ratios(k, "write-p99-µs")
		rr, rlo, rhi := ratios(k, "read-p99-µs")
		fmt.Printf("| %s | %s | %.2f | %.2f | %.0f | %.2f | %.2f | %.0f | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %.1f | %.1f | %.2f | %.4f |\n",
			k.variant, k.gc,
			med(k, "read-p50-µs"), med(k, "read-p99-µs"), med(k, "read-max-µs"),
			med(k, "write-p50-µs"), med(k, "write-p99-µs"), med(k, "write-max-µs"),
			wr, wlo, whi, rr, rlo, rhi,
			med(k, "allocs/write"), med(k, "allocs/read"), med(k, "gc-cpu-%"), med(k, "assist-cpu-s/s"))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

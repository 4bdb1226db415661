// Package sweep runs one scenario over many seeds on the virtual backend,
// on all cores, and reports the seeds whose invariants failed with the
// command that replays each one. A sweep can be split into shards (seed i
// belongs to shard i mod n) so that many machines, or the pods of a
// Kubernetes Indexed Job, share one seed space without overlap.
package sweep

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/virtual"
)

// Options configure a sweep. The zero value of each field means its default.
type Options struct {
	// Seeds is how many seeds the whole sweep covers, from the scenario's
	// seed upwards. Default 100.
	Seeds int
	// Shard and Shards select this machine's part: seeds whose offset i
	// satisfies i mod Shards == Shard. Default 0 of 1 (everything).
	Shard, Shards int
	// Workers is how many runs go at once. Default GOMAXPROCS.
	Workers int
	// Progress receives a progress bar (redrawn with \r); nil is quiet.
	Progress io.Writer
	// Scenario is how the failing runs' replay command names the scenario
	// (its file or built-in name).
	Scenario string
}

// Failure is one failing seed.
type Failure struct {
	Seed uint64 `json:"seed"`
	// Invariants are the names of the failed invariants, Detail the first
	// one's explanation.
	Invariants []string `json:"invariants"`
	Detail     string   `json:"detail"`
	// Command replays the seed.
	Command string `json:"command"`
	// Err is set when the run itself failed.
	Err string `json:"error,omitempty"`
}

// Result is the outcome of a sweep.
type Result struct {
	Runs     int           `json:"runs"`
	Failures []Failure     `json:"failures"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// SimTime is the simulated time of all runs together.
	SimTime time.Duration `json:"sim_time_ns"`
}

// ParseShard parses "i/n".
func ParseShard(s string) (shard, shards int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	if _, err := fmt.Sscanf(s, "%d/%d", &shard, &shards); err != nil || shards < 1 || shard < 0 || shard >= shards {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 <= i < n (for example 3/8)", s)
	}
	return shard, shards, nil
}

// Run sweeps the seeds of s.
func Run(s *scenarios.Scenario, o Options) Result {
	if o.Seeds <= 0 {
		o.Seeds = 100
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Scenario == "" {
		o.Scenario = s.Name
	}
	var seeds []uint64
	for i := 0; i < o.Seeds; i++ {
		if i%o.Shards == o.Shard {
			seeds = append(seeds, s.Seed+uint64(i))
		}
	}
	start := time.Now()
	var (
		next     atomic.Int64
		done     atomic.Int64
		failed   atomic.Int64
		simNanos atomic.Int64
		mu       sync.Mutex
		fails    []Failure
		wg       sync.WaitGroup
	)
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	go func() {
		defer close(barDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopBar:
				bar(o.Progress, int(done.Load()), len(seeds), int(failed.Load()), time.Since(start))
				if o.Progress != nil {
					fmt.Fprintln(o.Progress)
				}
				return
			case <-t.C:
				bar(o.Progress, int(done.Load()), len(seeds), int(failed.Load()), time.Since(start))
			}
		}
	}()
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(seeds) {
					return
				}
				sc := *s
				sc.Seed = seeds[i]
				res, err := virtual.Run(&sc, virtual.Options{})
				if f, bad := judge(&sc, o.Scenario, res, err); bad {
					failed.Add(1)
					mu.Lock()
					fails = append(fails, f)
					mu.Unlock()
				}
				if res != nil {
					simNanos.Add(int64(res.SimTime))
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stopBar)
	<-barDone
	sort.Slice(fails, func(i, j int) bool { return fails[i].Seed < fails[j].Seed })
	return Result{Runs: len(seeds), Failures: fails, Elapsed: time.Since(start), SimTime: time.Duration(simNanos.Load())}
}

func judge(s *scenarios.Scenario, name string, res *virtual.Result, err error) (Failure, bool) {
	f := Failure{Seed: s.Seed, Command: fmt.Sprintf("driftlab run --backend virtual --seed %d %s", s.Seed, name)}
	if err != nil {
		f.Err = err.Error()
		return f, true
	}
	for _, r := range res.Summary.Invariants {
		if !r.Passed {
			if f.Detail == "" {
				f.Detail = r.Detail
			}
			f.Invariants = append(f.Invariants, r.Name)
		}
	}
	return f, len(f.Invariants) > 0
}

func bar(w io.Writer, done, total, failed int, elapsed time.Duration) {
	if w == nil {
		return
	}
	const width = 30
	n := 0
	if total > 0 {
		n = done * width / total
	}
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "\r[%s%s] %d/%d seeds, %d failing, %.0f runs/s", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total, failed, rate)
}

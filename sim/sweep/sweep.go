package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/backend"
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
	// Swarm lets each seed choose which faults are on (see Swarm).
	Swarm bool
	// Progress receives a progress bar (redrawn with \r); nil is quiet.
	Progress io.Writer
	// ProgressLines writes the progress as one line every few seconds
	// instead of a redrawn bar, for logs that are not a terminal (a
	// Kubernetes pod's log, CI).
	ProgressLines bool
	// Scenario is how the failing runs' replay command names the scenario
	// (its file or built-in name).
	Scenario string
	// Live is how many failures are written to Progress as they happen
	// (seed, invariant, detail, replay command), so that a long sweep shows
	// its first failures at once. Default 0.
	Live int
	// Run runs one seed: the backend under sweep (for the reference
	// operator, virtual.Verdict). Required.
	Run backend.Func
	// Context, when set and cancelled, stops the sweep: no new run starts,
	// the runs under way finish, and the Result holds the runs done so far
	// with Interrupted set. Default: never cancelled.
	Context context.Context
}

// Failure is one failing seed.
type Failure struct {
	Seed uint64 `json:"seed"`
	// Invariants are the names of the failed invariants, Detail the first
	// one's explanation.
	Invariants []string `json:"invariants"`
	Detail     string   `json:"detail"`
	// FaultsOn are the indexes of the faults that were on (swarm sweeps
	// only; otherwise every fault was on) and Subset describes them.
	FaultsOn []int  `json:"faults_on,omitempty"`
	Subset   string `json:"subset,omitempty"`
	// Command replays the seed; Shrink minimises it.
	Command string `json:"command"`
	Shrink  string `json:"shrink"`
	// Err is set when the run itself failed.
	Err string `json:"error,omitempty"`
}

// FaultStats is how runs fared with one fault on and off (swarm sweeps).
type FaultStats struct {
	Index     int    `json:"index"`
	Fault     string `json:"fault"`
	On        int    `json:"runs_on"`
	FailedOn  int    `json:"failed_on"`
	Off       int    `json:"runs_off"`
	FailedOff int    `json:"failed_off"`
}

// Result is the outcome of a sweep.
type Result struct {
	// Runs is how many runs were carried out; Planned how many the sweep
	// (this shard) was to carry out. They differ when it was interrupted.
	Runs    int `json:"runs"`
	Planned int `json:"planned"`
	// Interrupted says the sweep was stopped (Options.Context) before
	// every planned run: Failures and the figures cover the runs done.
	Interrupted bool `json:"interrupted,omitempty"`

	Failures []Failure     `json:"failures"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// SimTime is the simulated time of all runs together.
	SimTime time.Duration `json:"sim_time_ns"`
	// ByInvariant counts failing seeds per failed invariant ("run-error"
	// for runs that could not complete).
	ByInvariant map[string]int `json:"by_invariant"`
	// Swarm is set for swarm sweeps: per fault, runs and failures with it
	// on and off.
	Swarm []FaultStats `json:"swarm,omitempty"`
}

// ParseShard parses "i/n": two decimal integers and nothing else (no
// sign, space or trailing text), with 0 <= i < n.
func ParseShard(s string) (shard, shards int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	bad := fmt.Errorf("--shard %q: want i/n with 0 <= i < n (for example 3/8)", s)
	a, b, ok := strings.Cut(s, "/")
	if !ok || !decimal(a) || !decimal(b) {
		return 0, 0, bad
	}
	shard, err1 := strconv.Atoi(a)
	shards, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || shards < 1 || shard >= shards {
		return 0, 0, bad
	}
	return shard, shards, nil
}

// decimal reports whether s is a non-empty run of ASCII digits.
func decimal(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Seeds lists the seeds of shard i of n of a sweep of count seeds from
// first upwards. Run does not build this list: it computes the k-th seed
// of its shard when a worker asks for it (ShardSeed), so the number of
// seeds costs no memory.
func Seeds(first uint64, count, shard, shards int) []uint64 {
	seeds := make([]uint64, 0, ShardSize(count, shard, shards))
	for k := range ShardSize(count, shard, shards) {
		seeds = append(seeds, ShardSeed(first, k, shard, shards))
	}
	return seeds
}

// ShardSize is how many of count seeds fall in shard i of n (offsets i,
// i+n, i+2n, ... below count).
func ShardSize(count, shard, shards int) int {
	if count <= shard {
		return 0
	}
	return (count-shard-1)/shards + 1
}

// ShardSeed is the k-th seed of shard i of n, counting from first.
func ShardSeed(first uint64, k, shard, shards int) uint64 {
	return first + uint64(shard) + uint64(k)*uint64(shards)
}

// Run sweeps the seeds of s. It panics when o.Run is nil: a sweep needs a
// backend.
func Run(s *scenarios.Scenario, o Options) Result {
	if o.Run == nil {
		panic("sweep: Options.Run is nil: pass the backend to sweep (for example virtual.Verdict)")
	}
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
	if o.Context == nil {
		o.Context = context.Background()
	}
	planned := ShardSize(o.Seeds, o.Shard, o.Shards)
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
	stats := make([]FaultStats, len(s.Faults))
	for i := range stats {
		stats[i] = FaultStats{Index: i, Fault: Describe(&s.Faults[i])}
	}
	p := &progress{w: o.Progress, lines: o.ProgressLines, total: planned, start: start}
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	go func() {
		defer close(barDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopBar:
				p.draw(int(done.Load()), int(failed.Load()), true)
				return
			case <-t.C:
				p.draw(int(done.Load()), int(failed.Load()), false)
			}
		}
	}()
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if o.Context.Err() != nil {
					return
				}
				i := int(next.Add(1)) - 1
				if i >= planned {
					return
				}
				sc := *s
				sc.Seed = ShardSeed(s.Seed, i, o.Shard, o.Shards)
				run, on := &sc, []int(nil)
				if o.Swarm {
					run, on = Swarm(s, sc.Seed)
				}
				res, err := o.Run(o.Context, run) // a harness bug fails this seed, not the sweep
				if errors.Is(err, backend.ErrInterrupted) {
					return // cut short: neither passed nor failed
				}
				f, bad := judge(run, o.Scenario, o.Swarm, res, err)
				if o.Swarm {
					f.FaultsOn, f.Subset = on, DescribeSubset(s, on)
				}
				mu.Lock()
				if bad {
					if n := failed.Add(1); int(n) <= o.Live {
						p.failure(f)
					}
					fails = append(fails, f)
				}
				if o.Swarm {
					tally(stats, on, bad)
				}
				mu.Unlock()
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
	if fails == nil {
		fails = []Failure{} // "failures": [] in JSON, not null
	}
	r := Result{Runs: int(done.Load()), Planned: planned, Failures: fails, Elapsed: time.Since(start), SimTime: time.Duration(simNanos.Load()),
		ByInvariant: map[string]int{}}
	r.Interrupted = r.Runs < planned
	for _, f := range fails {
		if f.Err != "" {
			r.ByInvariant["run-error"]++
		}
		for _, n := range f.Invariants {
			r.ByInvariant[n]++
		}
	}
	if o.Swarm {
		r.Swarm = stats
	}
	return r
}

// tally counts one run in the per-fault statistics.
func tally(stats []FaultStats, on []int, failed bool) {
	k := 0
	for i := range stats {
		isOn := k < len(on) && on[k] == i
		if isOn {
			k++
		}
		b := 0
		if failed {
			b = 1
		}
		if isOn {
			stats[i].On++
			stats[i].FailedOn += b
		} else {
			stats[i].Off++
			stats[i].FailedOff += b
		}
	}
}

// ReplayCommand is the one-line command that replays a seed of a scenario
// on the virtual backend (with --swarm: with the seed's fault subset).
func ReplayCommand(scenario string, seed uint64, swarm bool) string {
	return "driftlab run --backend virtual --seed " + strconv.FormatUint(seed, 10) + swarmFlag(swarm) + " " + shellQuote(scenario)
}

// ShrinkCommand is the one-line command that shrinks a failing seed.
func ShrinkCommand(scenario string, seed uint64, swarm bool) string {
	return "driftlab shrink --seed " + strconv.FormatUint(seed, 10) + swarmFlag(swarm) + " " + shellQuote(scenario)
}

func swarmFlag(on bool) string {
	if on {
		return " --swarm"
	}
	return ""
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func judge(s *scenarios.Scenario, name string, swarm bool, res *backend.Verdict, err error) (Failure, bool) {
	f := Failure{Seed: s.Seed, Command: ReplayCommand(name, s.Seed, swarm), Shrink: ShrinkCommand(name, s.Seed, swarm)}
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

// progress draws the sweep's progress: a bar redrawn in place on a
// terminal, or a line every 5 seconds (and at the end) in a log.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	lines bool
	total int
	start time.Time
	last  time.Time
}

// failure writes one failure as it happens, above the bar.
func (p *progress) failure(f Failure) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	what := strings.Join(f.Invariants, ", ")
	if f.Err != "" {
		what = "run error: " + f.Err
	}
	clear := "\r\033[K"
	if p.lines {
		clear = ""
	}
	detail := f.Detail
	if r := []rune(detail); len(r) > 160 {
		detail = string(r[:160]) + "…"
	}
	fmt.Fprintf(p.w, "%sFAIL seed %d: %s: %s\n  replay: %s\n", clear, f.Seed, what, detail, f.Command)
}

func (p *progress) draw(done, failed int, final bool) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.lines && !final && now.Sub(p.last) < 5*time.Second {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	eta := ""
	if done > 0 && done < p.total {
		eta = fmt.Sprintf(", about %s left", (time.Duration(float64(p.total-done) / rate * float64(time.Second))).Round(time.Second))
	}
	msg := fmt.Sprintf("%d/%d seeds, %d failing, %.0f runs/s, %s%s", done, p.total, failed, rate, elapsed.Round(100*time.Millisecond), eta)
	if p.lines {
		fmt.Fprintln(p.w, "sweep:", msg)
		return
	}
	const width = 30
	n := 0
	if p.total > 0 {
		n = done * width / p.total
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), msg)
	if final {
		fmt.Fprintln(p.w)
	}
}

package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftlab/driftlab/operator"
	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/statecache"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/invariant"
	"github.com/driftlab/driftlab/sim/local"
	"github.com/driftlab/driftlab/sim/report"
)

// Backend names.
const (
	BackendVirtual = "virtual"
	BackendLocal   = "local"
)

// Judged lists the invariants a matrix run is judged on, unless its
// scenario is expected to fail one of them (ExpectedFailures).
var Judged = []string{invariant.DriftConvergence, invariant.DriftStaleness, invariant.LatencySLO}

// ExpectedFailures lists, by scenario name, the invariants that scenario
// is built to make every operator fail, correct or not; the matrix does not
// judge them. incident-watch-lag reproduces the write-up's incident: its
// latency SLO fails by design. withheld-pod-events hides Pod events from
// the operator for seconds: a status written meanwhile mixes what it knew
// before the window with its own fresh deletes, a count that may never
// have been true (drift-staleness), and a Pod that became Ready and was
// deleted inside the window is never reflected (latency: unresolved); only
// drift-convergence, after the relist, is judged there.
var ExpectedFailures = map[string][]string{
	"incident-watch-lag":  {invariant.LatencySLO},
	"withheld-pod-events": {invariant.DriftStaleness, invariant.LatencySLO},
}

// LocalOnly lists scenarios left out of the virtual backend's default
// catalogue, with the reason. Empty now: slow-apiserver was here while the
// virtual model ran one reconcile worker.
var LocalOnly = map[string]string{}

// NotExpressible lists, per backend, the seeded bugs that backend cannot
// express, with the reason. The matrix does not run them there and shows
// them as "n/a" with the reason, not as uncaught: no scenario on that
// backend could catch them, so running them proves nothing.
var NotExpressible = map[string]map[string]string{
	BackendVirtual: {
		bugs.LockAcrossIO: "a virtual reconcile runs atomically at one instant and never waits on a lock, so holding the cache lock across an API call costs nothing; the local backend (slow-apiserver, four workers) catches it",
	},
}

// JudgedFor returns the invariants judged on a scenario.
func JudgedFor(scenario string) []string {
	var out []string
	for _, n := range Judged {
		if !slices.Contains(ExpectedFailures[scenario], n) {
			out = append(out, n)
		}
	}
	return out
}

// Options configure a matrix run. The zero value of each field means its
// default.
type Options struct {
	// Backend is "virtual" (default) or "local".
	Backend string
	// Seeds is the most seeds a seeded bug is tried with on one scenario
	// (it stops at the first failing seed). Default 100 on the virtual
	// backend, 1 on the local one.
	Seeds int
	// CleanSeeds is how many seeds the correct operator runs per cache
	// variant and scenario. Default Seeds.
	CleanSeeds int
	// Scenarios is the catalogue; default every built-in scenario but the
	// LocalOnly ones (on the local backend: LocalScenarios).
	Scenarios []*scenarios.Scenario
	// Bugs are the seeded bugs to try; default all.
	Bugs []string
	// Variants are the cache variants the correct operator runs with;
	// default all.
	Variants []string
	// SkipClean leaves out the correct operator's runs.
	SkipClean bool
	// SkipBugs leaves out the seeded bugs (the clean check alone).
	SkipBugs bool
	// Workers is how many virtual runs go at once. Default GOMAXPROCS.
	Workers int
	// Dir keeps the run directories of local runs; required on the local
	// backend.
	Dir string
	// KubeAPIServer is the kube-apiserver binary for local runs.
	KubeAPIServer string
	// Progress receives one line per finished cell; nil is quiet.
	Progress io.Writer
}

// LocalScenarios are the built-in scenarios the local backend runs by
// default: the healthy baseline and the slow API server that exposes
// lock-across-io.
var LocalScenarios = []string{"baseline", "slow-apiserver"}

// Cell is one (operator, scenario) pair of the matrix.
type Cell struct {
	// Bug is the seeded bug switched on; empty for the correct operator.
	Bug string `json:"bug,omitempty"`
	// Cache is the member cache variant.
	Cache    string `json:"cache"`
	Scenario string `json:"scenario"`
	// Seeds is how many seeds ran.
	Seeds int `json:"seeds"`
	// CaughtAfter is, for a bug, the number of seeds it took until the
	// first judged failure (1 = the first seed); 0 means not caught.
	CaughtAfter int `json:"caught_after,omitempty"`
	// Seed is the first failing seed.
	Seed uint64 `json:"seed,omitempty"`
	// Invariants are the judged invariants that failed at Seed.
	Invariants []string `json:"invariants,omitempty"`
	// Detail explains the first of them.
	Detail string `json:"detail,omitempty"`
	// Violations is, for the correct operator, how many seeds failed a
	// judged invariant (must be 0).
	Violations int `json:"violations"`
	// Errors counts runs that could not be carried out; Err is the first.
	Errors int    `json:"errors,omitempty"`
	Err    string `json:"error,omitempty"`
	// Command replays the first failing seed.
	Command string `json:"command,omitempty"`
}

// BugRow is one seeded bug across the catalogue.
type BugRow struct {
	Bug         string `json:"bug"`
	Description string `json:"description"`
	Cells       []Cell `json:"cells"`
	// Caught is true when at least one scenario caught the bug.
	Caught bool `json:"caught"`
	// NotApplicable, when set, is why the backend cannot express the bug
	// (NotExpressible): its cells did not run, and it is not uncaught.
	NotApplicable string `json:"not_applicable,omitempty"`
}

// Result is a whole matrix.
type Result struct {
	Backend   string   `json:"backend"`
	Seeds     int      `json:"seeds"`
	Scenarios []string `json:"scenarios"`
	Bugs      []BugRow `json:"bugs"`
	// Clean are the correct operator's cells, by cache variant then
	// scenario.
	Clean []Cell `json:"clean"`
	// Uncaught lists the bugs no scenario caught; NotApplicable the bugs
	// the backend cannot express (not run, not uncaught); FalseAlarms
	// counts the correct operator's failing seeds.
	Uncaught      []string      `json:"uncaught"`
	NotApplicable []string      `json:"not_applicable,omitempty"`
	FalseAlarms   int           `json:"false_alarms"`
	RunErrors     int           `json:"run_errors"`
	Runs          int           `json:"runs"`
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// OK reports whether every bug was caught, the correct operator raised no
// violation and every run could be carried out.
func (r *Result) OK() bool { return len(r.Uncaught) == 0 && r.FalseAlarms == 0 && r.RunErrors == 0 }

// runner runs one scenario (seed set) and returns its summary.
type runner func(ctx context.Context, s *scenarios.Scenario, tag string) (*report.Summary, error)

// Run builds the matrix. The error is for bad options; findings are in the
// Result.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if o.Backend == "" {
		o.Backend = BackendVirtual
	}
	var run runner
	switch o.Backend {
	case BackendVirtual:
		if o.Seeds <= 0 {
			o.Seeds = 100
		}
		run = func(_ context.Context, s *scenarios.Scenario, _ string) (*report.Summary, error) {
			// A harness bug is a failed run, not the end of the matrix.
			res, err := virtual.RunSafe(s, virtual.Options{Verdict: true})
			if res == nil {
				return nil, err
			}
			return res.Summary, err
		}
	case BackendLocal:
		if o.Seeds <= 0 {
			o.Seeds = 1
		}
		if o.Dir == "" {
			return nil, errors.New("matrix: Options.Dir is required on the local backend (run directories are kept)")
		}
		o.Workers = 1
		run = func(ctx context.Context, s *scenarios.Scenario, tag string) (*report.Summary, error) {
			sys, err := operator.System(s)
			if err != nil {
				return nil, err
			}
			return local.Run(ctx, s, local.RunOptions{Dir: filepath.Join(o.Dir, tag), System: sys, KubeAPIServer: o.KubeAPIServer})
		}
	default:
		return nil, fmt.Errorf("matrix: unknown backend %q (want virtual or local)", o.Backend)
	}
	if o.CleanSeeds <= 0 {
		o.CleanSeeds = o.Seeds
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if len(o.Scenarios) == 0 {
		var names []string
		for _, n := range scenarios.BuiltinNames() {
			if _, skip := LocalOnly[n]; !skip {
				names = append(names, n)
			}
		}
		if o.Backend == BackendLocal {
			names = LocalScenarios
		}
		for _, n := range names {
			s, err := scenarios.Builtin(n)
			if err != nil {
				return nil, err
			}
			if !s.Reference() || s.World != nil {
				continue // another operator's (deployment-world): no seeded bugs to catch
			}
			o.Scenarios = append(o.Scenarios, s)
		}
	}
	if o.Bugs == nil {
		o.Bugs = bugs.Names()
	}
	if o.SkipBugs {
		o.Bugs = nil
	}
	if _, err := bugs.Parse(o.Bugs); err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	if o.Variants == nil {
		o.Variants = statecache.Variants()
	}
	for _, v := range o.Variants {
		if _, err := statecache.New(v); err != nil {
			return nil, fmt.Errorf("matrix: %w", err)
		}
	}

	res := &Result{Backend: o.Backend, Seeds: o.Seeds}
	for _, s := range o.Scenarios {
		res.Scenarios = append(res.Scenarios, s.Name)
	}
	// Every cell, bugs first; each is filled in by one worker.
	var cells []*Cell
	var scens []*scenarios.Scenario
	for _, b := range o.Bugs {
		row := BugRow{Bug: b, Description: bugs.Table[b], Cells: make([]Cell, len(o.Scenarios)), NotApplicable: NotExpressible[o.Backend][b]}
		res.Bugs = append(res.Bugs, row)
	}
	for i := range res.Bugs {
		for j, s := range o.Scenarios {
			res.Bugs[i].Cells[j] = Cell{Bug: res.Bugs[i].Bug, Cache: s.Operator.Cache, Scenario: s.Name}
			if res.Bugs[i].NotApplicable != "" {
				continue // not run: the backend cannot express it
			}
			cells = append(cells, &res.Bugs[i].Cells[j])
			scens = append(scens, s)
		}
	}
	if !o.SkipClean {
		res.Clean = make([]Cell, 0, len(o.Variants)*len(o.Scenarios))
		for _, v := range o.Variants {
			for _, s := range o.Scenarios {
				res.Clean = append(res.Clean, Cell{Cache: v, Scenario: s.Name})
			}
		}
		for i := range res.Clean {
			cells = append(cells, &res.Clean[i])
			scens = append(scens, o.Scenarios[i%len(o.Scenarios)])
		}
	}

	var (
		next, done, runs atomic.Int64
		mu               sync.Mutex
		wg               sync.WaitGroup
	)
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cells) || ctx.Err() != nil {
					return
				}
				c := cells[i]
				seeds := o.Seeds
				if c.Bug == "" {
					seeds = o.CleanSeeds
				}
				runs.Add(int64(fillCell(ctx, c, scens[i], seeds, o.Backend, run)))
				n := done.Add(1)
				if o.Progress != nil {
					mu.Lock()
					fmt.Fprintf(o.Progress, "[%3d/%d %6.1fs] %s\n", n, len(cells), time.Since(start).Seconds(), c.describe())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("matrix interrupted after %d of %d cells: %w", done.Load(), len(cells), err)
	}
	for i := range res.Bugs {
		row := &res.Bugs[i]
		if row.NotApplicable != "" {
			res.NotApplicable = append(res.NotApplicable, row.Bug)
			continue
		}
		for _, c := range row.Cells {
			row.Caught = row.Caught || c.CaughtAfter > 0
			res.RunErrors += c.Errors
		}
		if !row.Caught {
			res.Uncaught = append(res.Uncaught, row.Bug)
		}
	}
	for _, c := range res.Clean {
		res.FalseAlarms += c.Violations
		res.RunErrors += c.Errors
	}
	res.Runs = int(runs.Load())
	res.Elapsed = time.Since(start)
	return res, nil
}

// fillCell runs one cell's seeds and returns how many runs it took.
func fillCell(ctx context.Context, c *Cell, base *scenarios.Scenario, seeds int, backend string, run runner) int {
	n := 0
	for i := range seeds {
		if ctx.Err() != nil {
			break
		}
		s := *base
		s.Seed = base.Seed + uint64(i)
		s.Operator.Bugs = nil
		if c.Bug != "" {
			s.Operator.Bugs = []string{c.Bug}
		} else {
			s.Operator.Cache = c.Cache
		}
		tag := fmt.Sprintf("%s-%s-%s-%d", orClean(c.Bug), c.Cache, s.Name, s.Seed)
		sum, err := run(ctx, &s, tag)
		n++
		c.Seeds++
		if err != nil || sum == nil {
			c.Errors++
			if c.Err == "" {
				c.Err = fmt.Sprintf("seed %d: %v", s.Seed, err)
			}
			continue
		}
		failed, detail := judge(sum)
		if len(failed) == 0 {
			continue
		}
		if c.Bug == "" {
			c.Violations++
		}
		if c.Seed == 0 && c.CaughtAfter == 0 && (c.Bug != "" || c.Violations == 1) {
			c.Seed, c.Invariants, c.Detail = s.Seed, failed, detail
			c.Command = replayCommand(&s, backend)
			if c.Bug != "" {
				c.CaughtAfter = i + 1
				break
			}
		}
	}
	return n
}

func orClean(bug string) string {
	if bug == "" {
		return "clean"
	}
	return bug
}

// judge returns the judged invariants a run failed, and the first one's
// detail.
func judge(sum *report.Summary) (failed []string, detail string) {
	judged := JudgedFor(sum.Scenario)
	for _, r := range sum.Invariants {
		if !r.Passed && slices.Contains(judged, r.Name) {
			failed = append(failed, r.Name)
			if detail == "" {
				detail = r.Detail
			}
		}
	}
	return failed, detail
}

// replayCommand is the command that replays one run: the scenario with its
// operator settings as flags-free YAML overrides are not available, so it
// names them.
func replayCommand(s *scenarios.Scenario, backend string) string {
	return fmt.Sprintf("driftlab run --backend %s --seed %d %s  (operator.cache: %s, operator.bugs: [%s])",
		backend, s.Seed, s.Name, s.Operator.Cache, strings.Join(s.Operator.Bugs, ", "))
}

func (c *Cell) describe() string {
	who := "clean " + c.Cache
	if c.Bug != "" {
		who = c.Bug
	}
	switch {
	case c.Bug != "" && c.CaughtAfter > 0:
		return fmt.Sprintf("%-26s %-22s caught after %d seeds (%s)", who, c.Scenario, c.CaughtAfter, strings.Join(c.Invariants, ", "))
	case c.Bug != "":
		return fmt.Sprintf("%-26s %-22s not caught in %d seeds", who, c.Scenario, c.Seeds)
	default:
		return fmt.Sprintf("%-26s %-22s %d/%d seeds with violations", who, c.Scenario, c.Violations, c.Seeds)
	}
}

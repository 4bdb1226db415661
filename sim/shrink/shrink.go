package shrink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/backend"
	"github.com/driftlab/driftlab/sim/workload"
)

// DefaultMaxRuns bounds the runs of one shrink (the first run included).
const DefaultMaxRuns = 500

// ErrNothingToShrink is returned (wrapped, with the reason) when the
// scenario's run does not fail the invariant to preserve.
var ErrNothingToShrink = errors.New("nothing to shrink")

// ErrUnknownInvariant is returned (wrapped) when Options.Invariant names no
// invariant of the run.
var ErrUnknownInvariant = errors.New("unknown invariant")

// Options configure a shrink. The zero value of each field means its default.
type Options struct {
	// Invariant is the invariant that must keep failing. Default: the first
	// invariant the original run fails, preferring any other over "faults"
	// (which fails when a fault cannot be run, not because of the operator).
	Invariant string
	// MaxRuns bounds the number of runs, the first one included. Default
	// DefaultMaxRuns.
	MaxRuns int
	// Progress receives one line per run; nil is quiet.
	Progress io.Writer
	// Run runs one candidate: the backend whose failure is shrunk (for the
	// reference operator, virtual.Verdict). Required.
	Run backend.Func
}

// Size measures a scenario for reports: what a shrink reduces.
type Size struct {
	Faults int `json:"faults"`
	// FaultTime is the summed length of the fault windows (a window open to
	// the end counts to the end of the workload).
	FaultTime time.Duration `json:"fault_time_ns"`
	// Ops is the number of workload operations the seed generates.
	Ops      int           `json:"ops"`
	Workload time.Duration `json:"workload_ns"`
	Objects  int           `json:"objects"`
}

// String says it in one line: "2 faults (46s of fault windows), 162
// operations over 30s on 4 clusters".
func (z Size) String() string {
	return fmt.Sprintf("%s (%s of fault windows), %s over %s on %s",
		plural(z.Faults, "fault"), z.FaultTime, plural(z.Ops, "operation"), z.Workload, plural(z.Objects, "object"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Measure sizes a scenario with its seed.
func Measure(s *scenarios.Scenario) Size {
	z := Size{Faults: len(s.Faults), Ops: len(workload.Generate(s.Workload, s.Seed, s.NamePrefix())),
		Workload: s.Workload.Duration.Duration, Objects: s.Workload.Objects}
	for i := range s.Faults {
		_, l := window(&s.Faults[i], z.Workload)
		z.FaultTime += l
	}
	if ops := s.Workload.Operations; len(ops) > 0 {
		names := map[string]bool{}
		for _, op := range ops {
			names[op.Name] = true
		}
		z.Objects = len(names)
	}
	return z
}

// Result is the outcome of a shrink.
type Result struct {
	// Minimal is the smallest scenario found whose run still fails
	// Invariant with the original seed (the original when nothing smaller
	// fails).
	Minimal *scenarios.Scenario
	// Invariant is the invariant kept failing; Detail is its explanation
	// in the minimal run, TraceHash that run's trace hash.
	Invariant string
	Detail    string
	TraceHash string
	// Runs is the number of runs made, the first included; Kept is how
	// many reductions were kept, Steps describes them in order.
	Runs  int
	Kept  int
	Steps []string
	// Before and After size the original and the minimal scenario.
	Before, After Size
	Elapsed       time.Duration
	// Exhausted is set when the run budget ended the search, Interrupted
	// when the context did: Minimal is then the smallest found so far.
	Exhausted, Interrupted bool
}

// Shrink minimises s (with its seed, s.Seed) while its run keeps failing
// the same invariant. It returns an error wrapping ErrNothingToShrink when
// the run does not fail that invariant, and another error when the first
// run could not be carried out. When ctx is cancelled it stops and returns
// the smallest failing scenario found so far.
func Shrink(ctx context.Context, s *scenarios.Scenario, o Options) (*Result, error) {
	if o.MaxRuns <= 0 {
		o.MaxRuns = DefaultMaxRuns
	}
	if o.Run == nil {
		return nil, errors.New("shrink: Options.Run is nil: pass the backend to shrink on (for example virtual.Verdict)")
	}
	began := time.Now()
	sh := &shrinker{o: o, tried: map[string]bool{}}
	cur, key, err := normalise(s)
	if err != nil {
		return nil, fmt.Errorf("shrink: the scenario itself cannot be written as YAML: %w", err)
	}
	sh.tried[key] = true
	first, err := o.Run(ctx, cur)
	sh.runs++
	if err != nil {
		return nil, fmt.Errorf("shrink: the first run of %s seed %d failed: %w", s.Name, s.Seed, err)
	}
	var failing []string
	for _, r := range first.Summary.Invariants {
		if !r.Passed {
			failing = append(failing, r.Name)
		}
	}
	target := o.Invariant
	if target == "" {
		for _, n := range failing {
			if target == "" || target == "faults" {
				target = n
			}
		}
		if target == "" {
			return nil, fmt.Errorf("%w: scenario %s passes every invariant with seed %d", ErrNothingToShrink, s.Name, s.Seed)
		}
	} else if _, ok := result(first, target); !ok {
		var known []string
		for _, r := range first.Summary.Invariants {
			known = append(known, r.Name)
		}
		return nil, fmt.Errorf("%w: no invariant %q (this run checks: %s)", ErrUnknownInvariant, target, strings.Join(known, ", "))
	}
	detail, failed := failure(first, target)
	if !failed {
		why := "no invariant fails"
		if len(failing) > 0 {
			why = "failing: " + strings.Join(failing, ", ")
		}
		return nil, fmt.Errorf("%w: invariant %s passes for scenario %s with seed %d (%s)", ErrNothingToShrink, target, s.Name, s.Seed, why)
	}
	sh.target, sh.kinds = target, Kinds(detail)
	res := &Result{Invariant: target, Detail: detail, TraceHash: first.TraceHash, Before: Measure(cur)}
	sh.logf("run 1/%d: %s seed %d as given: fails %s (%s); %s", o.MaxRuns, s.Name, s.Seed, target, clip(detail, 100), res.Before)

	for changed := true; changed; {
		changed = false
		for _, p := range passes {
			for {
				kept, stop := sh.tryAll(ctx, cur, p(cur), res)
				if stop {
					res.Interrupted = ctx.Err() != nil
					res.Exhausted = !res.Interrupted
					return sh.finish(res, cur, began), nil
				}
				if kept == nil {
					break
				}
				cur, changed = kept, true
			}
		}
	}
	return sh.finish(res, cur, began), nil
}

type shrinker struct {
	o      Options
	target string
	kinds  []string // Kinds of the original failure's detail
	runs   int
	tried  map[string]bool
}

var (
	objectName = regexp.MustCompile(`\b[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9.-]*\b`)
	number     = regexp.MustCompile(`\b\d+(\.\d+)?`)
)

// Kinds returns the kinds of failure an invariant's detail reports: its
// "; "-separated clauses with object names and numbers masked, so that
// "default/kv-0 never converged: status.readyReplicas=0 but 3 member Pods
// are Ready" and the same words about kv-2 with other counts are one kind,
// and "p99 1432.6ms > 1s" is another kind than "no Pod became Ready:
// nothing was measured". A reduction is kept only if its failure shares a
// kind with the original failure, so the shrink cannot slip from the
// failure it was asked about to another failure of the same invariant.
func Kinds(detail string) []string {
	var out []string
	for _, c := range strings.Split(detail, "; ") {
		c = strings.TrimSuffix(strings.TrimSpace(c), "…")
		c = number.ReplaceAllString(objectName.ReplaceAllString(c, "<object>"), "#")
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// sameFailure reports whether a failure's detail shares a kind with the
// original failure.
func (sh *shrinker) sameFailure(detail string) bool { return sharesKind(sh.kinds, detail) }

// SameFailure reports whether two failure details name a failure of the
// same kind (a kind of Kinds in common): what shrink keeps while it cuts.
func SameFailure(a, b string) bool { return sharesKind(Kinds(a), b) }

func sharesKind(kinds []string, detail string) bool {
	for _, k := range Kinds(detail) {
		if slices.Contains(kinds, k) {
			return true
		}
	}
	return false
}

func (sh *shrinker) logf(format string, args ...any) {
	if sh.o.Progress != nil {
		fmt.Fprintf(sh.o.Progress, "shrink: "+format+"\n", args...)
	}
}

func (sh *shrinker) finish(res *Result, cur *scenarios.Scenario, began time.Time) *Result {
	res.Minimal, res.After, res.Runs, res.Elapsed = cur, Measure(cur), sh.runs, time.Since(began)
	return res
}

// tryAll runs the candidates in order and returns the first that still
// fails the target; stop is set when the budget or the context ends the
// search.
func (sh *shrinker) tryAll(ctx context.Context, cur *scenarios.Scenario, cands []candidate, res *Result) (kept *scenarios.Scenario, stop bool) {
	for _, c := range cands {
		if ctx.Err() != nil || sh.runs >= sh.o.MaxRuns {
			return nil, true
		}
		s, key, err := normalise(c.s)
		if err != nil || sh.tried[key] {
			continue // not writable or invalid (never run), or already run
		}
		sh.tried[key] = true
		sh.runs++
		r, err := sh.o.Run(ctx, s)
		if errors.Is(err, backend.ErrInterrupted) {
			return nil, true // cut short: neither kept nor dropped
		}
		var outcome string
		switch {
		case err != nil:
			outcome = "run error: " + clip(err.Error(), 100)
		default:
			detail, failed := failure(r, sh.target)
			if failed && !sh.sameFailure(detail) {
				outcome = fmt.Sprintf("fails %s differently (%s)", sh.target, clip(detail, 100))
				break
			}
			if failed {
				res.Kept++
				res.Steps = append(res.Steps, c.desc)
				res.Detail, res.TraceHash = detail, r.TraceHash
				sh.logf("run %d/%d: %s: still fails %s, kept; now %s", sh.runs, sh.o.MaxRuns, c.desc, sh.target, Measure(s))
				return s, false
			}
			var other []string
			for _, x := range r.Summary.Invariants {
				if !x.Passed {
					other = append(other, x.Name)
				}
			}
			outcome = "passes"
			if len(other) > 0 {
				outcome = "fails only " + strings.Join(other, ", ")
			}
		}
		sh.logf("run %d/%d: %s: %s, dropped", sh.runs, sh.o.MaxRuns, c.desc, outcome)
	}
	return nil, false
}

// result finds an invariant's result in a run's summary.
func result(r *backend.Verdict, name string) (passed bool, ok bool) {
	for _, x := range r.Summary.Invariants {
		if x.Name == name {
			return x.Passed, true
		}
	}
	return false, false
}

// failure reports whether a run fails the named invariant, and its detail.
func failure(r *backend.Verdict, name string) (string, bool) {
	for _, x := range r.Summary.Invariants {
		if x.Name == name {
			return x.Detail, !x.Passed
		}
	}
	return "", false
}

// normalise writes a candidate as YAML and loads it back, so that what runs
// is exactly what the file will hold; the YAML is the candidate's identity.
func normalise(s *scenarios.Scenario) (*scenarios.Scenario, string, error) {
	b, err := scenarios.Encode(s)
	if err != nil {
		return nil, "", err
	}
	back, err := scenarios.Parse(s.File, b)
	if err != nil {
		return nil, "", err
	}
	return back, string(b), nil
}

// clip shortens s to n runes for a progress line.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// candidate is one reduction of the current scenario.
type candidate struct {
	desc string
	s    *scenarios.Scenario
}

// pass proposes reductions of a scenario, biggest first.
type pass func(*scenarios.Scenario) []candidate

// passes run in this order in every round.
var passes = []pass{dropFaults, shortenWorkload, dropOperations, generated(fewerObjects), generated(noDeletes),
	generated(lessAnnotation), generated(lessScaling), generated(fewerReplicas), shortenWindows, explicitOperations}

// explicitOperations writes a generated workload as the explicit list of
// the operations the seed generated (workload.operations): the same run,
// but from then on single operations can be dropped (dropOperations)
// without the seed regenerating, and so shifting, all the others. It runs
// last, after the generator's own settings are as small as they get.
func explicitOperations(s *scenarios.Scenario) []candidate {
	if len(s.Workload.Operations) > 0 {
		return nil
	}
	ops := workload.Generate(s.Workload, s.Seed, s.NamePrefix())
	if len(ops) < 2 {
		return nil
	}
	c := clone(s)
	c.Workload.Operations = make([]scenarios.Operation, len(ops))
	for i, op := range ops {
		c.Workload.Operations[i] = scenarios.Operation{At: scenarios.Duration{Duration: op.At}, Op: op.Kind,
			Name: op.Name, Replicas: int(op.Replicas), Key: op.Key, Value: op.Value}
	}
	return []candidate{{fmt.Sprintf("write the %d generated operations as workload.operations", len(ops)), c}}
}

// generated limits a pass to generated workloads: with an explicit
// workload.operations list the generator's settings are not used.
func generated(p pass) pass {
	return func(s *scenarios.Scenario) []candidate {
		if len(s.Workload.Operations) > 0 {
			return nil
		}
		return p(s)
	}
}

// dropOperations is ddmin over an explicit operation list: chunks of half,
// a quarter, …, one operation. At least one operation stays (an empty list
// means a generated workload).
func dropOperations(s *scenarios.Scenario) []candidate {
	ops := s.Workload.Operations
	n := len(ops)
	var out []candidate
	for k := n / 2; k >= 1; k /= 2 {
		for i := 0; i < n; i += k {
			j := min(i+k, n)
			if j-i >= n {
				continue
			}
			c := clone(s)
			c.Workload.Operations = append(slices.Clone(ops[:i]), ops[j:]...)
			what := fmt.Sprintf("%s %s at %s", ops[i].Op, ops[i].Name, ops[i].At)
			if j-i > 1 {
				what = fmt.Sprintf("%d operations from %s %s at %s", j-i, ops[i].Op, ops[i].Name, ops[i].At)
			}
			out = append(out, candidate{fmt.Sprintf("drop workload.operations[%d:%d] (%s)", i, j, what), c})
		}
		if k == 1 {
			break
		}
	}
	return out
}

func clone(s *scenarios.Scenario) *scenarios.Scenario {
	c := *s
	c.Faults = slices.Clone(s.Faults)
	c.Workload.Operations = slices.Clone(s.Workload.Operations)
	c.Operator.Bugs = slices.Clone(s.Operator.Bugs)
	return &c
}

// window is a fault's start and length; a window open to the end (or an
// afterOps one, whose start is not known in advance) runs to the end of the
// workload d.
func window(f *scenarios.Fault, d time.Duration) (start, length time.Duration) {
	if f.AfterOps > 0 {
		if f.Duration.Duration > 0 {
			return 0, f.Duration.Duration
		}
		return 0, d
	}
	if f.Duration.Duration > 0 {
		return f.Start.Duration, f.Duration.Duration
	}
	return f.Start.Duration, max(d-f.Start.Duration, 0)
}

// dropFaults is ddmin over the fault list: every fault, then chunks of
// half, a quarter, …, one fault.
func dropFaults(s *scenarios.Scenario) []candidate {
	n := len(s.Faults)
	if n == 0 {
		return nil
	}
	var out []candidate
	c := clone(s)
	c.Faults = []scenarios.Fault{}
	out = append(out, candidate{fmt.Sprintf("drop all %d faults", n), c})
	for k := n / 2; k >= 1; k /= 2 {
		for i := 0; i < n; i += k {
			j := min(i+k, n)
			if j-i == n {
				continue
			}
			c := clone(s)
			c.Faults = append(slices.Clone(s.Faults[:i]), s.Faults[j:]...)
			idx := make([]string, 0, j-i)
			for x := i; x < j; x++ {
				idx = append(idx, fmt.Sprintf("[%d] %s", x, s.Faults[x].Type))
			}
			out = append(out, candidate{fmt.Sprintf("drop fault %s", strings.Join(idx, ", ")), c})
		}
		if k == 1 {
			break
		}
	}
	return out
}

// shortenWorkload cuts the workload to a quarter, a half or three quarters
// of its length, first keeping the fault windows (dropping those that would
// start after the new end), then scaling them with the workload, then
// moving them earlier by the length cut.
func shortenWorkload(s *scenarios.Scenario) []candidate {
	d := s.Workload.Duration.Duration
	var out []candidate
	for _, f := range []float64{0.25, 0.5, 0.75} {
		nd := time.Duration(float64(d) * f).Round(100 * time.Millisecond)
		if nd < 500*time.Millisecond || nd >= d {
			continue
		}
		cl := clone(s)
		cl.Workload.Duration.Duration = nd
		cl.Workload.Operations = keepUntil(s.Workload.Operations, nd)
		cl.Faults = cl.Faults[:0]
		dropped := 0
		for _, ft := range s.Faults {
			if ft.AfterOps == 0 && ft.Start.Duration >= nd {
				dropped++
				continue
			}
			cl.Faults = append(cl.Faults, ft)
		}
		desc := fmt.Sprintf("workload.duration %s → %s", d, nd)
		if dropped > 0 {
			desc += fmt.Sprintf(" (dropping %d faults that started later)", dropped)
		}
		out = append(out, candidate{desc, cl})
		if len(s.Faults) > 0 {
			sc := clone(s)
			sc.Workload.Duration.Duration = nd
			sc.Workload.Operations = keepUntil(s.Workload.Operations, nd)
			for i := range sc.Faults {
				ft := &sc.Faults[i]
				if ft.AfterOps == 0 {
					ft.Start.Duration = time.Duration(float64(ft.Start.Duration) * f).Round(time.Millisecond)
				}
				ft.Duration.Duration = time.Duration(float64(ft.Duration.Duration) * f).Round(time.Millisecond)
			}
			out = append(out, candidate{fmt.Sprintf("workload.duration %s → %s with fault windows scaled by %g", d, nd, f), sc})
			// Cut from the front instead: windows keep their distance to
			// the end of the workload (a fault that matters near the end,
			// such as events withheld until a final relist).
			sh := clone(s)
			sh.Workload.Duration.Duration = nd
			sh.Workload.Operations = keepUntil(s.Workload.Operations, nd)
			for i := range sh.Faults {
				if ft := &sh.Faults[i]; ft.AfterOps == 0 {
					ft.Start.Duration = max(ft.Start.Duration-(d-nd), 0)
				}
			}
			out = append(out, candidate{fmt.Sprintf("workload.duration %s → %s with fault windows moved %s earlier", d, nd, d-nd), sh})
		}
	}
	return out
}

// keepUntil keeps the explicit operations due by the end d; nil when none
// were given.
func keepUntil(ops []scenarios.Operation, d time.Duration) []scenarios.Operation {
	if len(ops) == 0 {
		return nil
	}
	var out []scenarios.Operation
	for _, op := range ops {
		if op.At.Duration <= d {
			out = append(out, op)
		}
	}
	if len(out) == 0 {
		return ops[:1] // keep one, or the workload would become a generated one; validation then refuses the candidate
	}
	return out
}

func fewerObjects(s *scenarios.Scenario) []candidate {
	n := s.Workload.Objects
	var out []candidate
	seen := map[int]bool{}
	for _, m := range []int{1, n / 2, n - 1} {
		if m < 1 || m >= n || seen[m] {
			continue
		}
		seen[m] = true
		c := clone(s)
		c.Workload.Objects = m
		c.Workload.DeleteObjects = min(c.Workload.DeleteObjects, m)
		out = append(out, candidate{fmt.Sprintf("workload.objects %d → %d", n, m), c})
	}
	return out
}

func noDeletes(s *scenarios.Scenario) []candidate {
	if s.Workload.DeleteObjects == 0 {
		return nil
	}
	c := clone(s)
	c.Workload.DeleteObjects = 0
	return []candidate{{fmt.Sprintf("workload.deleteObjects %d → 0", s.Workload.DeleteObjects), c}}
}

func lessAnnotation(s *scenarios.Scenario) []candidate {
	r := s.Workload.Annotate.Rate
	if r == 0 {
		return nil
	}
	var out []candidate
	for _, nr := range []float64{0, math.Round(r/4*10) / 10, math.Round(r/2*10) / 10} {
		if nr >= r || (nr > 0 && nr < 0.1) {
			continue
		}
		c := clone(s)
		c.Workload.Annotate.Rate = nr
		out = append(out, candidate{fmt.Sprintf("workload.annotate.rate %g → %g/s", r, nr), c})
	}
	return out
}

func lessScaling(s *scenarios.Scenario) []candidate {
	e := s.Workload.Scale.Every.Duration
	if e == 0 {
		return nil
	}
	c := clone(s)
	c.Workload.Scale.Every.Duration = 0
	out := []candidate{{fmt.Sprintf("workload.scale.every %s → 0 (no scaling)", e), c}}
	for _, k := range []time.Duration{4, 2} {
		if e*k >= s.Workload.Duration.Duration {
			continue
		}
		c := clone(s)
		c.Workload.Scale.Every.Duration = e * k
		out = append(out, candidate{fmt.Sprintf("workload.scale.every %s → %s (fewer scale steps)", e, e*k), c})
	}
	return out
}

func fewerReplicas(s *scenarios.Scenario) []candidate {
	var out []candidate
	for _, r := range []struct {
		name string
		get  func(*scenarios.Scenario) *scenarios.IntRange
	}{
		{"workload.initialReplicas", func(s *scenarios.Scenario) *scenarios.IntRange { return &s.Workload.InitialReplicas }},
		{"workload.scale.replicas", func(s *scenarios.Scenario) *scenarios.IntRange { return &s.Workload.Scale.Replicas }},
	} {
		if r.name == "workload.scale.replicas" && s.Workload.Scale.Every.Duration == 0 {
			continue // no scaling: the range is not used
		}
		old := *r.get(s)
		// Fixed small counts first (a candidate that cannot be written,
		// such as 0..0 which loads as the default, is never run), then a
		// narrower range.
		for _, nr := range []scenarios.IntRange{{Min: 0, Max: 0}, {Min: 1, Max: 1}, {Min: old.Min, Max: old.Min}, {Min: old.Min, Max: old.Min + (old.Max-old.Min)/2}} {
			if nr.Max > old.Max || nr == old || (nr.Max == old.Max && nr.Min >= old.Min) {
				continue
			}
			c := clone(s)
			*r.get(c) = nr
			out = append(out, candidate{fmt.Sprintf("%s %d..%d → %d..%d", r.name, old.Min, old.Max, nr.Min, nr.Max), c})
		}
	}
	return out
}

// shortenWindows shortens each fault's window: keep its first or second
// half, or trim a quarter from its end or its start.
func shortenWindows(s *scenarios.Scenario) []candidate {
	d := s.Workload.Duration.Duration
	var out []candidate
	for i := range s.Faults {
		f := &s.Faults[i]
		start, l := window(f, d)
		if l < 200*time.Millisecond {
			continue
		}
		type cut struct {
			what          string
			from, howLong time.Duration // offset into the window, new length
		}
		cuts := []cut{{"first half", 0, l / 2}, {"second half", l / 2, l - l/2}, {"trim the last quarter", 0, l - l/4}, {"trim the first quarter", l / 4, l - l/4}}
		for _, ct := range cuts {
			if f.AfterOps > 0 && ct.from > 0 {
				continue // an afterOps window's start is an operation, not a time
			}
			c := clone(s)
			g := &c.Faults[i]
			g.Duration.Duration = ct.howLong.Round(10 * time.Millisecond)
			if f.AfterOps == 0 {
				g.Start.Duration = (start + ct.from).Round(10 * time.Millisecond)
			}
			if g.Duration.Duration <= 0 {
				continue
			}
			out = append(out, candidate{fmt.Sprintf("fault [%d] %s: %s (%s → %s)", i, f.Type, ct.what, f.Describe(), g.Describe()), c})
		}
	}
	return out
}

// Document returns the minimal scenario as a YAML file that scenarios.Load
// reads: named after the original with "-shrunk", on the virtual backend,
// with its seed, under a comment header that says where it came from
// (origin: the file or name it was shrunk from, its seed, and how its
// faults were chosen), what still fails, how it was reduced, and the command that
// replays it from file.
func (r *Result) Document(origin, file string) ([]byte, error) {
	m := clone(r.Minimal)
	orig := strings.TrimSuffix(m.Name, "-shrunk")
	m.Name = orig + "-shrunk"
	m.Backend = backend.Virtual
	m.Description = fmt.Sprintf("%s shrunk by driftlab shrink: seed %d still fails %s.", orig, m.Seed, r.Invariant)
	body, err := scenarios.Encode(m)
	if err != nil {
		return nil, err
	}
	var h strings.Builder
	line := func(format string, args ...any) {
		for _, l := range strings.Split(fmt.Sprintf(format, args...), "\n") {
			h.WriteString(strings.TrimRight("# "+l, " ") + "\n")
		}
	}
	line("Minimal failing scenario, written by driftlab shrink.")
	line("Shrunk from: %s.", origin)
	line("Still fails %s: %s", r.Invariant, r.Detail)
	line("Before: %s.", r.Before)
	line("After:  %s.", r.After)
	status := ""
	switch {
	case r.Interrupted:
		status = " (interrupted: the smallest failing scenario found so far)"
	case r.Exhausted:
		status = " (run budget spent: smaller ones may exist)"
	}
	line("%d runs, %d reductions kept%s:", r.Runs, r.Kept, status)
	for _, st := range r.Steps {
		line("  - %s", st)
	}
	line("Replay (trace hash %s):", r.TraceHash)
	line("  %s", ReplayCommand(m.Seed, file))
	return append([]byte(h.String()), body...), nil
}

// ReplayCommand is the command that replays a shrunk scenario file.
func ReplayCommand(seed uint64, file string) string {
	return fmt.Sprintf("driftlab run --backend virtual --seed %d %s", seed, file)
}

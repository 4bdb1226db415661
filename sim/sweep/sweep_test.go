package sweep

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/driftlab/driftlab/operator/bugs"
	"github.com/driftlab/driftlab/operator/virtual"
	"github.com/driftlab/driftlab/scenarios"
)

func TestShardsSplitTheSeedSpace(t *testing.T) {
	if _, _, err := ParseShard("3/3"); err == nil {
		t.Fatal("3/3 accepted")
	}
	if i, n, err := ParseShard("2/8"); err != nil || i != 2 || n != 8 {
		t.Fatalf("ParseShard(2/8) = %d, %d, %v", i, n, err)
	}
	s, _ := scenarios.Builtin("baseline")
	s.Operator.Bugs = []string{bugs.FreezeStatus} // every seed fails: failures list the seeds run
	seen := map[uint64]int{}
	for shard := 0; shard < 3; shard++ {
		r := Run(s, Options{Run: virtual.Verdict, Seeds: 10, Shard: shard, Shards: 3, Workers: 2})
		for _, f := range r.Failures {
			seen[f.Seed]++
		}
	}
	if len(seen) != 10 {
		t.Fatalf("3 shards covered %d of 10 seeds: %v", len(seen), seen)
	}
	for seed, n := range seen {
		if n != 1 {
			t.Fatalf("seed %d ran in %d shards", seed, n)
		}
	}
}

func TestSweepFindsBrokenOperatorWithReplayCommand(t *testing.T) {
	s, _ := scenarios.Builtin("baseline")
	clean := Run(s, Options{Run: virtual.Verdict, Seeds: 40})
	if len(clean.Failures) != 0 {
		t.Fatalf("clean operator failed: %+v", clean.Failures[0])
	}
	s.Operator.Bugs = []string{bugs.FreezeStatus}
	var bar bytes.Buffer
	r := Run(s, Options{Run: virtual.Verdict, Seeds: 20, Progress: &bar, Scenario: "broken.yaml"})
	if len(r.Failures) == 0 {
		t.Fatal("freeze-status not caught in 20 seeds")
	}
	f := r.Failures[0]
	if f.Command != "driftlab run --backend virtual --seed 1 broken.yaml" || f.Invariants[0] != "drift-convergence" {
		t.Fatalf("failure %+v", f)
	}
	if !strings.Contains(bar.String(), "20/20 seeds") {
		t.Fatalf("progress bar did not finish: %q", bar.String())
	}
}

func TestLiveFailuresAndLogProgress(t *testing.T) {
	s, _ := scenarios.Builtin("baseline")
	s.Operator.Bugs = []string{bugs.FreezeStatus}
	var log bytes.Buffer
	r := Run(s, Options{Run: virtual.Verdict, Seeds: 6, Progress: &log, ProgressLines: true, Live: 2, Scenario: "b.yaml"})
	if len(r.Failures) != 6 {
		t.Fatalf("%d failures", len(r.Failures))
	}
	out := log.String()
	if n := strings.Count(out, "FAIL seed "); n != 2 || !strings.Contains(out, "  replay: driftlab run --backend virtual --seed ") {
		t.Fatalf("want 2 live failures with replay commands:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if strings.Contains(out, "\r") || !strings.HasPrefix(lines[len(lines)-1], "sweep: 6/6 seeds, 6 failing, ") {
		t.Fatalf("log progress should be plain lines ending with the total:\n%q", out)
	}
}

func TestParseShardIsStrict(t *testing.T) {
	for _, bad := range []string{"1/2xyz", "1/2/3", "+1/2", "1/+2", " 1/2", "1/ 2", "-1/2", "1/0", "/2", "1/", "1"} {
		if i, n, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) = %d, %d: accepted", bad, i, n)
		}
	}
}

// TestShardSeedsMatchTheList: the seeds a worker computes one at a time
// are those of the list (offset i mod n == shard), in order.
func TestShardSeedsMatchTheList(t *testing.T) {
	for count := 0; count < 12; count++ {
		for shards := 1; shards < 5; shards++ {
			for shard := 0; shard < shards; shard++ {
				var want []uint64
				for i := 0; i < count; i++ {
					if i%shards == shard {
						want = append(want, 7+uint64(i))
					}
				}
				got := Seeds(7, count, shard, shards)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("count %d shard %d/%d: %v, want %v", count, shard, shards, got, want)
				}
			}
		}
	}
}

// cancelOnWrite cancels a context on the first write (the first failure
// a sweep reports live).
type cancelOnWrite struct {
	cancel context.CancelFunc
}

func (c cancelOnWrite) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("FAIL seed")) {
		c.cancel()
	}
	return len(p), nil
}

// TestInterruptedSweepKeepsWhatWasDone: a sweep of two billion seeds
// (which would not fit in memory as a list) is cancelled after its first
// failure: it returns at once, marked interrupted, with the runs done and
// their failures.
func TestInterruptedSweepKeepsWhatWasDone(t *testing.T) {
	s, _ := scenarios.Builtin("baseline")
	s.Operator.Bugs = []string{bugs.FreezeStatus} // every seed fails
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := Run(s, Options{Run: virtual.Verdict, Seeds: 2_000_000_000, Workers: 2, Context: ctx, Live: 1, Progress: cancelOnWrite{cancel}})
	if !r.Interrupted || r.Planned != 2_000_000_000 || r.Runs < 1 || r.Runs > 100 {
		t.Fatalf("interrupted %v, %d of %d runs", r.Interrupted, r.Runs, r.Planned)
	}
	if len(r.Failures) != r.Runs {
		t.Fatalf("%d failures for %d runs of a bug every seed shows", len(r.Failures), r.Runs)
	}
}

package failpoint_test

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/scenarios"
)

// TestScenarioFailpointFields: a failpoint fault loads with its name and
// term; an unknown name or a bad term fails on load with file, line, field
// and what is available.
func TestScenarioFailpointFields(t *testing.T) {
	good := "name: x\nworkload: {duration: 20s}\nfaults:\n  - {type: failpoint, name: walBeforeSync, term: \"sleep(200)\", start: 5s, duration: 10s}\n  - {type: failpoint, name: beforeStatusWrite, term: \"2*sleep(\\\"1s\\\")->off\", start: 6s}\n"
	s, err := scenarios.Parse("ok.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Faults[0]; f.Name != "walBeforeSync" || f.Term != "sleep(200)" || f.Describe() != "failpoint walBeforeSync=sleep(200) from 5s for 10s" {
		t.Errorf("decoded %+v, described %q", f, f.Describe())
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown name", "name: x\nfaults:\n  - type: failpoint\n    name: walBeforeSink\n    term: sleep(1)\n",
			`bad.yaml:4: faults[0].name: unknown failpoint "walBeforeSink" (available: beforeRequeue, beforeStatusWrite, inCacheUpdate, inEventHandler, afterCommit,`},
		{"bad term", "name: x\nfaults:\n  - type: failpoint\n    name: walBeforeSync\n    term: sleep(ten)\n",
			`bad.yaml:5: faults[0].term: term "sleep(ten)", step 1 "sleep(ten)": sleep(ten): want milliseconds`},
		{"probability", "name: x\nfaults:\n  - {type: failpoint, name: raftBeforeSave, term: \"50%sleep(10)\"}\n",
			`bad.yaml:3: faults[0].term: term "50%sleep(10)", step 1 "50%sleep(10)": probability modifiers`},
		{"missing term", "name: x\nfaults:\n  - {type: failpoint, name: raftBeforeSave}\n",
			`bad.yaml:3: faults[0].term: empty term`},
		{"param of other type", "name: x\nfaults:\n  - {type: wal-fsync-delay, delay: 10ms, term: sleep(1)}\n",
			`bad.yaml:3: faults[0].term: not a parameter of wal-fsync-delay`},
		{"overlap of one failpoint", "name: x\nfaults:\n  - {type: failpoint, name: walBeforeSync, term: sleep(1), start: 1s, duration: 5s}\n  - {type: failpoint, name: walBeforeSync, term: sleep(2), start: 2s}\n",
			`bad.yaml:4: faults[1].start: overlaps faults[0]`},
	} {
		_, err := scenarios.Parse("bad.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v\nwant it to contain %q", c.name, err, c.want)
		}
	}
	// Two different failpoints may overlap.
	two := "name: x\nfaults:\n  - {type: failpoint, name: walBeforeSync, term: sleep(1), start: 1s, duration: 5s}\n  - {type: failpoint, name: raftBeforeSave, term: sleep(2), start: 2s}\n"
	if _, err := scenarios.Parse("two.yaml", []byte(two)); err != nil {
		t.Errorf("two failpoints in overlapping windows: %v", err)
	}
}

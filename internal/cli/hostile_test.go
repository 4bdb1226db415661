package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHostileScenariosExitTwo (issue 17, as a user would meet it): each
// scenario that used to crash, hang, lie or take the machine down is
// refused by run, sweep and scenarios with exit 2 and one line
// "driftlab: FILE:LINE: FIELD: message" (file-level problems have no
// field), quickly, and run leaves nothing in --out.
func TestHostileScenariosExitTwo(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, src, field, want string
		line                   int
	}{
		{"expo", "name: expo\nkubelet:\n  readyDelay: {distribution: exponential, mean: 1000000h, max: 1s}\n", "kubelet.readyDelay.mean", "longer than the limit of 720h0m0s", 3},
		{"every1ns", "name: every1ns\nworkload:\n  scale:\n    every: 1ns\n", "workload.scale.every", "more than the limit of 1000000 per run", 4},
		{"hugeduration", "name: hugeduration\nworkload:\n  duration: 1000000h\n  scale: {every: 1s}\n", "workload.duration", "longer than the limit of 720h0m0s", 3},
		{"nanrate", "name: nanrate\nfaults:\n  - type: gc-assist-pressure\n    rate: !!float NaN\n", "faults[0].rate", `want a finite number, got "NaN"`, 4},
		{"infloss", "name: infloss\nfaults:\n  - {type: network-retransmit, loss: .inf}\n", "faults[0].loss", "want a finite number", 3},
		{"nanprob", "name: nanprob\nfaults:\n  - type: wal-fsync-delay\n    delay: 10ms\n    probability: .nan\n", "faults[0].probability", "want a finite number", 5},
		{"clusters", "name: clusters\nworkload:\n  clusters: 0\n  deleteClusters: 4\n", "workload.clusters", "renamed to workload.objects", 3},
		{"zeroobjects", "name: zeroobjects\nworkload:\n  objects: 0\n  deleteObjects: 4\n", "workload.deleteObjects", "must be between 0 and objects (0), got 4", 4},
		{"zeroprob", "name: zeroprob\nfaults:\n  - {type: wal-fsync-delay, delay: 1ms, probability: 0}\n", "faults[0].probability", "0 is not a usable value", 3},
		{"longname", "name: " + strings.Repeat("n", 300) + "\n", "name", "300 characters: at most 63", 1},
		{"second", "name: second\n---\nname: [other\n", "", "not valid YAML (in a second document, after ---", 0},
		{"seconddoc", "name: second\n---\nname: other\n", "", "a second YAML document (after ---)", 2},
		{"empty", "", "", "the file is empty", 0},
		{"comments", "# name: x\n", "", "the file is empty (only comments", 0},
		{"toolarge", "name: toolarge\n#" + strings.Repeat("x", 5<<20) + "\n", "", "more than the limit of 4 MiB for a scenario file", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".yaml")
			if err := os.WriteFile(p, []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			loc := regexp.QuoteMeta(p) + "(:[0-9]+)?" // some file-level problems have a line
			if c.line > 0 {
				loc = regexp.QuoteMeta(p) + ":" + strconv.Itoa(c.line)
			}
			field := ""
			if c.field != "" {
				field = regexp.QuoteMeta(c.field) + ": "
			}
			want := regexp.MustCompile("^driftlab: " + loc + ": " + field + ".*" + regexp.QuoteMeta(c.want) + ".*\n$")
			out := filepath.Join(t.TempDir(), "out")
			for _, args := range [][]string{
				{"run", "--backend", "virtual", "--no-report", "--quiet", "--out", out, p},
				{"sweep", "--backend", "virtual", "--seeds", "2", p},
				{"scenarios", p},
			} {
				t0 := time.Now()
				code, _, stderr := run(args...)
				if took := time.Since(t0); took > 10*time.Second {
					t.Errorf("%s: %v to refuse it", args[0], took)
				}
				if code != ExitUsage || !want.MatchString(stderr) {
					t.Errorf("%s: exit %d, stderr %q\nwant exit %d and %s", args[0], code, trim(stderr), ExitUsage, want)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("run of a refused scenario made %s", out)
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

package virtual

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driftlab/driftlab/scenarios"
	"github.com/driftlab/driftlab/sim/bundle"
	"github.com/driftlab/driftlab/sim/history"
)

// TestResultDescribesTheHistoryWritten: Result.History, which the bundle
// uses instead of reading history.jsonl again, has the file's size and
// SHA-256 and exactly its fault and metrics records, for a run that ends
// and for one interrupted halfway.
func TestResultDescribesTheHistoryWritten(t *testing.T) {
	for _, interrupt := range []bool{false, true} {
		s, err := scenarios.Builtin("incident-watch-lag")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		if interrupt {
			s.Workload.Duration.Duration = 12 * time.Hour
			go func() {
				for ctx.Err() == nil {
					if st, err := os.Stat(filepath.Join(dir, "history.jsonl")); err == nil && st.Size() > 1<<20 {
						cancel()
					}
					time.Sleep(time.Millisecond)
				}
			}()
		}
		res, err := Run(s, Options{Dir: dir, Context: ctx})
		cancel()
		if err != nil && !interrupt {
			t.Fatal(err)
		}
		if res == nil || res.History == nil {
			t.Fatalf("interrupted %v: no History in %+v (%v)", interrupt, res, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if res.History.Size != int64(len(b)) || res.History.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("interrupted %v: History %d bytes %s, the file %d bytes %x", interrupt, res.History.Size, res.History.SHA256, len(b), sum)
		}
		f, err := os.Open(filepath.Join(dir, "history.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := history.Read(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var want []history.Record
		for _, r := range recs {
			if bundle.FaultOrMetrics(r.Kind) {
				want = append(want, r)
			}
		}
		got, _ := json.Marshal(res.History.FaultsAndMetrics)
		exp, _ := json.Marshal(want)
		if len(want) == 0 || string(got) != string(exp) {
			t.Fatalf("interrupted %v: %d fault and metrics records, the file has %d:\n%s\n%s", interrupt, len(res.History.FaultsAndMetrics), len(want), got, exp)
		}
	}
}

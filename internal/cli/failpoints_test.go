package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestFailpointsCommand: `driftlab failpoints` lists etcd's and the
// operator's failpoints and says whether this build has them.
func TestFailpointsCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"failpoints"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"walBeforeSync", "raftBeforeSave", "beforeSendWatchResponse", "beforeStatusWrite", "storage/wal/wal.go"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	want := "etcd failpoints: not in this build (this driftlab was built without etcd gofail failpoints"
	if os.Getenv("DRIFTLAB_FAILPOINT_BUILD") == "1" {
		want = "etcd failpoints: in this build"
	}
	if !strings.Contains(s, want) {
		t.Errorf("output lacks %q:\n%s", want, s)
	}
}

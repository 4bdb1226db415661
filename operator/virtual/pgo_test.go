package virtual

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
)

// TestPGOProfileCoversTheModel: cmd/driftlab/default.pgo, the CPU profile
// go build uses to optimise bin/driftlab (PGO), is a gzipped pprof profile
// of this package's kernel running the reference operator. A profile of
// something else, or a damaged file, would build a binary that is merely
// not optimised, silently; `make pgo` makes a new one.
func TestPGOProfileCoversTheModel(t *testing.T) {
	f, err := os.Open("../../cmd/driftlab/default.pgo")
	if err != nil {
		t.Fatalf("%v (make pgo writes it)", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("cmd/driftlab/default.pgo: not a gzipped pprof profile: %v (make pgo)", err)
	}
	raw, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("cmd/driftlab/default.pgo: %v (make pgo)", err)
	}
	for _, fn := range []string{
		"github.com/driftlab/driftlab/operator/virtual.(*kernel).run",
		"github.com/driftlab/driftlab/operator/controller.(*Reconciler).Reconcile",
		"github.com/driftlab/driftlab/operator/virtual.(*recordStream).take",
	} {
		if !bytes.Contains(raw, []byte(fn)) {
			t.Errorf("cmd/driftlab/default.pgo has no samples in %s: not a profile of virtual runs (make pgo)", fn)
		}
	}
}

package virtual

import (
	"strings"
	"testing"

	"github.com/driftlab/driftlab/scenarios"
)

// What the virtual backend does not model is refused with the field that
// asks for it, never run without it.
func TestRefusesWhatItDoesNotModel(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name: x\noperator:\n  env: {GODEBUG: \"x=1\"}\n", "operator.env.GODEBUG"},
		{"name: x\nworld: {}\n", "world"},
	} {
		s, err := scenarios.Parse("x.yaml", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(s, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want it to name %s", c.src, err, c.want)
		}
	}
}

package bugs

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	s, err := Parse([]string{StaleOverwrite, DropTombstone})
	if err != nil {
		t.Fatal(err)
	}
	if !s.On(StaleOverwrite) || !s.On(DropTombstone) || s.On(FreezeStatus) {
		t.Fatalf("set: %v", s)
	}
	_, err = Parse([]string{"nope"})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), LockAcrossIO) {
		t.Fatalf("unknown bug: %v", err)
	}
	if len(Names()) < 8 {
		t.Fatalf("want at least 8 seeded bugs, have %v", Names())
	}
	var none Set
	if none.On(FreezeStatus) {
		t.Fatal("nil set has a bug on")
	}
}

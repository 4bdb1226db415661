package statecache

import "testing"

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := Member{Revision: 1<<40 + 7, Ready: true, Pod: "kv-a-3"}
	r := m.Encode()
	got, ok := Decode(&r)
	if !ok || got != m {
		t.Fatalf("round trip: got %+v ok=%v, want %+v", got, ok, m)
	}
	var empty [RecordSize]byte
	if _, ok := Decode(&empty); ok {
		t.Fatal("empty record decoded as present")
	}
}

func TestMapRejectsOlderRevision(t *testing.T) {
	c := NewMap()
	if !c.Observe("a", 0, Member{Revision: 10, Ready: true, Pod: "p"}) {
		t.Fatal("first observe refused")
	}
	if c.Observe("a", 0, Member{Revision: 9, Ready: false, Pod: "p"}) {
		t.Fatal("older revision overwrote newer one")
	}
	if got := c.Members("a")[0]; !got.Ready || got.Revision != 10 {
		t.Fatalf("record changed by stale update: %+v", got)
	}
	// A new Pod incarnation for the same ordinal replaces the old one.
	if !c.Observe("a", 0, Member{Revision: 5, Pod: "p2"}) {
		t.Fatal("new pod for ordinal refused")
	}
	c.Remove("a", 0)
	if len(c.Members("a")) != 0 {
		t.Fatal("remove left a record")
	}
	c.Observe("a", 1, Member{Revision: 1, Pod: "q"})
	c.Forget("a")
	if len(c.Members("a")) != 0 {
		t.Fatal("forget left records")
	}
}

func TestNewUnknownVariant(t *testing.T) {
	if _, err := New("nope"); err == nil {
		t.Fatal("want error for unknown variant")
	}
}

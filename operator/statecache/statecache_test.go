package statecache

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

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
	long := Member{Pod: strings.Repeat("x", 400)}
	r = long.Encode()
	if got, _ := Decode(&r); len(got.Pod) != maxPodName {
		t.Fatalf("long name: got %d bytes, want it truncated to %d", len(got.Pod), maxPodName)
	}
}

func TestNewUnknownVariant(t *testing.T) {
	_, err := New("nope")
	if err == nil {
		t.Fatal("want error for unknown variant")
	}
	for _, v := range []string{"map", "ptrmap", "syncmap", "snapshot", "arena"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error %q does not list variant %s", err, v)
		}
		if Descriptions[v] == "" {
			t.Errorf("variant %s has no description", v)
		}
	}
}

// forEachVariant runs f on a fresh cache of every variant.
func forEachVariant(t *testing.T, f func(t *testing.T, c Cache)) {
	if len(Variants()) != 5 {
		t.Fatalf("variants: %v", Variants())
	}
	for _, v := range Variants() {
		t.Run(v, func(t *testing.T) {
			c, err := New(v)
			if err != nil {
				t.Fatal(err)
			}
			f(t, c)
		})
	}
}

// TestConformance is the behaviour every variant shares: the revision
// check, the unchecked Put, removal, forgetting, isolation of clusters.
func TestConformance(t *testing.T) {
	forEachVariant(t, func(t *testing.T, c Cache) {
		if _, ok := c.Get("a", 0); ok {
			t.Fatal("empty cache has a record")
		}
		if len(c.Members("a")) != 0 {
			t.Fatal("empty cache has members")
		}
		if !c.Observe("a", 0, Member{Revision: 10, Ready: true, Pod: "p"}) {
			t.Fatal("first observe refused")
		}
		if c.Observe("a", 0, Member{Revision: 9, Ready: false, Pod: "p"}) {
			t.Fatal("older revision overwrote newer one")
		}
		if got, ok := c.Get("a", 0); !ok || !got.Ready || got.Revision != 10 {
			t.Fatalf("record changed by stale update: %+v %v", got, ok)
		}
		if !c.Observe("a", 0, Member{Revision: 10, Ready: true, Pod: "p"}) {
			t.Fatal("same revision refused (replays must be idempotent)")
		}
		if !c.Observe("a", 0, Member{Revision: 12, Ready: false, Terminating: true, Pod: "p"}) {
			t.Fatal("newer revision refused")
		}
		if got, _ := c.Get("a", 0); got.Ready || !got.Terminating || got.Revision != 12 {
			t.Fatalf("newer revision not stored: %+v", got)
		}
		// Put skips the check: the stale-overwrite bug's path.
		c.Put("a", 0, Member{Revision: 3, Ready: true, Pod: "p"})
		if got, _ := c.Get("a", 0); got.Revision != 3 || !got.Ready || got.Terminating {
			t.Fatalf("Put did not overwrite: %+v", got)
		}
		// A record of another Pod for the same ordinal is replaced whatever
		// its revision.
		if !c.Observe("a", 0, Member{Revision: 1, Pod: "p2"}) {
			t.Fatal("new pod for ordinal refused")
		}
		c.Observe("a", 1, Member{Revision: 20, Ready: true, Pod: "q"})
		c.Observe("b", 0, Member{Revision: 21, Pod: "r"})
		want := map[int]Member{0: {Revision: 1, Pod: "p2"}, 1: {Revision: 20, Ready: true, Pod: "q"}}
		if got := c.Members("a"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("members: got %v, want %v", got, want)
		}
		c.Remove("a", 0)
		c.Remove("a", 7)   // absent: no-op
		c.Remove("zzz", 0) // unknown cluster: no-op
		if _, ok := c.Get("a", 0); ok {
			t.Fatal("remove left a record")
		}
		if len(c.Members("a")) != 1 {
			t.Fatalf("remove dropped too much: %v", c.Members("a"))
		}
		c.Forget("a")
		if len(c.Members("a")) != 0 {
			t.Fatal("forget left records")
		}
		if got, ok := c.Get("b", 0); !ok || got.Pod != "r" {
			t.Fatal("forget of one cluster touched another")
		}
		// A forgotten cluster starts afresh.
		if !c.Observe("a", 1, Member{Revision: 2, Pod: "q"}) {
			t.Fatal("observe after forget refused")
		}
		if c.Observe("a", -1, Member{Revision: 1, Pod: "x"}) || c.Observe("a", MaxOrdinal+1, Member{Revision: 1, Pod: "x"}) {
			t.Fatal("ordinal out of range accepted")
		}
		c.Put("a", -1, Member{Pod: "x"})
		if len(c.Members("a")) != 1 {
			t.Fatalf("out-of-range put stored something: %v", c.Members("a"))
		}
	})
}

// TestConcurrentNewestWins has writers observe random revisions of the same
// members while readers read: under -race nothing races, and each member
// ends with the highest revision any writer offered, whatever the
// interleaving (the revision check is atomic with the store).
func TestConcurrentNewestWins(t *testing.T) {
	forEachVariant(t, func(t *testing.T, c Cache) {
		const writers, perWriter, members = 4, 2000, 8
		var wg sync.WaitGroup
		best := make([][]uint64, writers)
		for w := range writers {
			best[w] = make([]uint64, members)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for range perWriter {
					ord := r.IntN(members)
					rev := r.Uint64N(1 << 30)
					best[w][ord] = max(best[w][ord], rev)
					c.Observe("kv", ord, Member{Revision: rev, Ready: rev%2 == 0, Pod: fmt.Sprintf("kv-%d", ord)})
					if r.IntN(50) == 0 {
						c.Observe("other", ord, Member{Revision: rev, Pod: "o"})
						c.Remove("other", ord)
					}
				}
			}()
		}
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 2 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					for ord, m := range c.Members("kv") {
						if m.Pod != fmt.Sprintf("kv-%d", ord) || m.Ready != (m.Revision%2 == 0) {
							t.Errorf("torn record for %d: %+v", ord, m)
							return
						}
					}
					c.Get("kv", 3)
				}
			}()
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		got := c.Members("kv")
		for ord := range members {
			var want uint64
			for w := range writers {
				want = max(want, best[w][ord])
			}
			if got[ord].Revision != want {
				t.Errorf("member %d: revision %d, want the newest %d", ord, got[ord].Revision, want)
			}
		}
	})
}

func TestArenaReusesFreedSlots(t *testing.T) {
	c := NewArena(4)
	for i := range 6 { // grows by a second chunk
		c.Observe("a", i, Member{Revision: uint64(i + 1), Ready: true, Pod: fmt.Sprint("a-", i)})
	}
	if inUse, free, capacity := c.Slots(); inUse != 6 || free != 0 || capacity != 8 {
		t.Fatalf("slots: in use %d, free %d, capacity %d; want 6, 0, 8", inUse, free, capacity)
	}
	c.Forget("a")
	if inUse, free, _ := c.Slots(); inUse != 0 || free != 6 {
		t.Fatalf("after forget: in use %d, free %d; want 0, 6", inUse, free)
	}
	// New records reuse the freed slots and never show the old contents.
	for i := range 6 {
		if _, ok := c.Get("a", i); ok {
			t.Fatalf("forgotten member %d still readable", i)
		}
		c.Observe("b", i, Member{Revision: 1, Pod: "b"})
	}
	if inUse, free, capacity := c.Slots(); inUse != 6 || free != 0 || capacity != 8 {
		t.Fatalf("reuse: in use %d, free %d, capacity %d; want 6, 0, 8 (no growth)", inUse, free, capacity)
	}
	for ord, m := range c.Members("b") {
		if m.Pod != "b" || m.Ready || m.Revision != 1 {
			t.Fatalf("reused slot %d shows old data: %+v", ord, m)
		}
	}
	// Steady-state updates of existing members allocate nothing.
	if a := testing.AllocsPerRun(100, func() { c.Observe("b", 2, Member{Revision: 5, Pod: "b"}) }); a != 0 {
		t.Fatalf("arena update allocates %.1f times", a)
	}
}

func TestSnapshotVersions(t *testing.T) {
	c := NewSnapshot()
	c.Observe("a", 0, Member{Revision: 1, Pod: "p"})
	v1 := c.Version("a")
	before := c.Members("a")
	c.Observe("a", 0, Member{Revision: 2, Ready: true, Pod: "p"})
	if c.Version("a") != v1+1 {
		t.Fatalf("version %d after one update from %d", c.Version("a"), v1)
	}
	if c.Observe("a", 0, Member{Revision: 1, Pod: "p"}); c.Version("a") != v1+1 {
		t.Fatal("a refused update published a version")
	}
	// The old version is still readable and unchanged.
	old, ok := c.At("a", v1)
	if !ok || old[0].Ready || old[0] != before[0] {
		t.Fatalf("version %d: %v %v, want %v", v1, old, ok, before)
	}
	for i := range RingSize {
		c.Observe("a", 1, Member{Revision: uint64(10 + i), Pod: "q"})
	}
	if _, ok := c.At("a", v1); ok {
		t.Fatal("a version older than the ring is still readable")
	}
	if now, ok := c.At("a", c.Version("a")); !ok || now[1].Revision != 10+RingSize-1 {
		t.Fatalf("latest version: %v %v", now, ok)
	}
}

// TestMapReadyCounterMatchesMembers: Map's CountReady and Has give the
// answers of counting Members and calling Get, through stores, removals
// and terminating members (a wrong count would change status text).
func TestMapReadyCounterMatchesMembers(t *testing.T) {
	c := NewMap()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		cl := fmt.Sprintf("ns/kv-%d", rng.IntN(3))
		ord := rng.IntN(6)
		switch rng.IntN(4) {
		case 0:
			c.Remove(cl, ord)
		default:
			c.Put(cl, ord, Member{Revision: uint64(i), Ready: rng.IntN(2) == 0, Terminating: rng.IntN(4) == 0, Pod: fmt.Sprintf("p-%d", ord)})
		}
		for k := range 4 {
			cl := fmt.Sprintf("ns/kv-%d", k)
			want := 0
			for _, m := range c.Members(cl) {
				if m.Ready && !m.Terminating {
					want++
				}
			}
			if got := c.CountReady(cl); got != want {
				t.Fatalf("step %d: CountReady(%s) = %d, counting Members gives %d", i, cl, got, want)
			}
			for o := range 7 {
				_, want := c.Get(cl, o)
				if got := c.Has(cl, o); got != want {
					t.Fatalf("step %d: Has(%s, %d) = %v, Get says %v", i, cl, o, got, want)
				}
			}
		}
	}
}

package statecache

import (
	"sync"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// DefaultArenaSlots is how many [256]byte slots an arena preallocates (and
// adds each time it runs out).
const DefaultArenaSlots = 1024

// Arena is the write-up's chapter 4.2 design: member records live in
// [256]byte slots of a preallocated arena, the per-cluster maps hold only
// slot numbers (4 bytes), and updates rewrite the slot in place, so steady
// state updates allocate nothing. A removed member's slot is zeroed and put
// on a free list for reuse. Reuse is safe because a record is only ever
// read under the arena's lock and copied out (decoded) before the lock is
// released: no caller holds a reference into a slot. The arena grows by
// whole chunks and never shrinks.
type Arena struct {
	mu       sync.Mutex
	chunk    int
	chunks   [][][RecordSize]byte
	free     []int32
	used     int32 // slots ever handed out (the high-water mark)
	clusters map[string]map[int]int32
}

var _ Cache = (*Arena)(nil)

// NewArena returns an empty Arena cache with slots preallocated slots (0
// means DefaultArenaSlots).
func NewArena(slots int) *Arena {
	if slots <= 0 {
		slots = DefaultArenaSlots
	}
	return &Arena{chunk: slots, chunks: [][][RecordSize]byte{make([][RecordSize]byte, slots)}, clusters: map[string]map[int]int32{}}
}

func (c *Arena) slot(i int32) *[RecordSize]byte { return &c.chunks[int(i)/c.chunk][int(i)%c.chunk] }

func (c *Arena) alloc() int32 {
	if n := len(c.free); n > 0 {
		i := c.free[n-1]
		c.free = c.free[:n-1]
		return i
	}
	if int(c.used) == len(c.chunks)*c.chunk {
		c.chunks = append(c.chunks, make([][RecordSize]byte, c.chunk))
	}
	c.used++
	return c.used - 1
}

func (c *Arena) release(i int32) {
	*c.slot(i) = [RecordSize]byte{}
	c.free = append(c.free, i)
}

// Observe implements Cache.
func (c *Arena) Observe(cluster string, ordinal int, m Member) bool {
	return c.store(cluster, ordinal, m, true)
}

// Put implements Cache.
func (c *Arena) Put(cluster string, ordinal int, m Member) { c.store(cluster, ordinal, m, false) }

func (c *Arena) store(cluster string, ordinal int, m Member, checked bool) bool {
	if !validOrdinal(ordinal) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	members := c.clusters[cluster]
	if members == nil {
		members = map[int]int32{}
		c.clusters[cluster] = members
	}
	i, ok := members[ordinal]
	if ok && checked && olderThanStored(c.slot(i), m) {
		return false
	}
	if !ok {
		i = c.alloc()
		members[ordinal] = i
	}
	m.encodeInto(c.slot(i))
	return true
}

// Get implements Cache.
func (c *Arena) Get(cluster string, ordinal int) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.clusters[cluster][ordinal]
	if !ok {
		return Member{}, false
	}
	return Decode(c.slot(i))
}

// Remove implements Cache.
func (c *Arena) Remove(cluster string, ordinal int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	if i, ok := c.clusters[cluster][ordinal]; ok {
		delete(c.clusters[cluster], ordinal)
		c.release(i)
	}
}

// Forget implements Cache.
func (c *Arena) Forget(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	for _, i := range c.clusters[cluster] {
		c.release(i)
	}
	delete(c.clusters, cluster)
}

// Members implements Cache.
func (c *Arena) Members(cluster string) map[int]Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]Member, len(c.clusters[cluster]))
	for ord, i := range c.clusters[cluster] {
		if m, ok := Decode(c.slot(i)); ok {
			out[ord] = m
		}
	}
	return out
}

// Slots reports the arena's slots in use, on the free list, and allocated
// in total.
func (c *Arena) Slots() (inUse, free, capacity int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.used) - len(c.free), len(c.free), len(c.chunks) * c.chunk
}

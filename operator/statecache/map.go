package statecache

import (
	"sync"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// Map is the write-up's original: map[int][256]byte per cluster behind one
// mutex that guards both reads and writes. Every store copies the whole
// 256-byte record into the map, and map growth copies every record.
type Map struct {
	mu       sync.Mutex
	clusters map[string]map[int][RecordSize]byte
}

var _ Cache = (*Map)(nil)

// NewMap returns an empty Map cache.
func NewMap() *Map { return &Map{clusters: map[string]map[int][RecordSize]byte{}} }

// Observe implements Cache.
func (c *Map) Observe(cluster string, ordinal int, m Member) bool {
	return c.store(cluster, ordinal, m, true)
}

// Put implements Cache.
func (c *Map) Put(cluster string, ordinal int, m Member) { c.store(cluster, ordinal, m, false) }

func (c *Map) store(cluster string, ordinal int, m Member, checked bool) bool {
	if !validOrdinal(ordinal) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	members := c.clusters[cluster]
	if members == nil {
		members = map[int][RecordSize]byte{}
		c.clusters[cluster] = members
	}
	if checked {
		if old, ok := members[ordinal]; ok && olderThanStored(&old, m) {
			return false
		}
	}
	members[ordinal] = m.Encode()
	return true
}

// Get implements Cache.
func (c *Map) Get(cluster string, ordinal int) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok := c.clusters[cluster][ordinal]
	if !ok {
		return Member{}, false
	}
	return Decode(&rec)
}

// Remove implements Cache.
func (c *Map) Remove(cluster string, ordinal int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	delete(c.clusters[cluster], ordinal)
}

// Forget implements Cache.
func (c *Map) Forget(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	delete(c.clusters, cluster)
}

// Members implements Cache.
func (c *Map) Members(cluster string) map[int]Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]Member, len(c.clusters[cluster]))
	for ord, rec := range c.clusters[cluster] {
		if m, ok := Decode(&rec); ok {
			out[ord] = m
		}
	}
	return out
}

var _ ReadyCounter = (*Map)(nil)

// CountReady implements ReadyCounter.
func (c *Map) CountReady(cluster string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, rec := range c.clusters[cluster] {
		if countable(&rec) {
			n++
		}
	}
	return n
}

// Has implements ReadyCounter.
func (c *Map) Has(cluster string, ordinal int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok := c.clusters[cluster][ordinal]
	return ok && rec[0]&flagPresent != 0
}

package statecache

import (
	"sync"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// PtrMap is map[int]*[256]byte per cluster behind one mutex: the map holds
// pointers, so map growth moves 8 bytes per entry instead of 256, and an
// update rewrites the existing record in place (readers decode under the
// same lock, so they never see a half-written record).
type PtrMap struct {
	mu       sync.Mutex
	clusters map[string]map[int]*[RecordSize]byte
}

var _ Cache = (*PtrMap)(nil)

// NewPtrMap returns an empty PtrMap cache.
func NewPtrMap() *PtrMap { return &PtrMap{clusters: map[string]map[int]*[RecordSize]byte{}} }

// Observe implements Cache.
func (c *PtrMap) Observe(cluster string, ordinal int, m Member) bool {
	return c.store(cluster, ordinal, m, true)
}

// Put implements Cache.
func (c *PtrMap) Put(cluster string, ordinal int, m Member) { c.store(cluster, ordinal, m, false) }

func (c *PtrMap) store(cluster string, ordinal int, m Member, checked bool) bool {
	if !validOrdinal(ordinal) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	members := c.clusters[cluster]
	if members == nil {
		members = map[int]*[RecordSize]byte{}
		c.clusters[cluster] = members
	}
	rec := members[ordinal]
	if checked && olderThanStored(rec, m) {
		return false
	}
	if rec == nil {
		rec = new([RecordSize]byte)
		members[ordinal] = rec
	}
	m.encodeInto(rec)
	return true
}

// Get implements Cache.
func (c *PtrMap) Get(cluster string, ordinal int) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.clusters[cluster][ordinal]
	if rec == nil {
		return Member{}, false
	}
	return Decode(rec)
}

// Remove implements Cache.
func (c *PtrMap) Remove(cluster string, ordinal int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	delete(c.clusters[cluster], ordinal)
}

// Forget implements Cache.
func (c *PtrMap) Forget(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	delete(c.clusters, cluster)
}

// Members implements Cache.
func (c *PtrMap) Members(cluster string) map[int]Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]Member, len(c.clusters[cluster]))
	for ord, rec := range c.clusters[cluster] {
		if m, ok := Decode(rec); ok {
			out[ord] = m
		}
	}
	return out
}

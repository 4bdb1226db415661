package statecache

import (
	"sync"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// SyncMap keeps clusters in a sync.Map, each cluster's members in another
// sync.Map of immutable *[256]byte records. An update builds a new record
// and installs it with CompareAndSwap, retrying when another writer got
// there first, so the revision check holds without a lock.
type SyncMap struct {
	clusters sync.Map // string -> *sync.Map (int -> *[RecordSize]byte)
}

var _ Cache = (*SyncMap)(nil)

// NewSyncMap returns an empty SyncMap cache.
func NewSyncMap() *SyncMap { return &SyncMap{} }

func (c *SyncMap) members(cluster string, create bool) *sync.Map {
	if v, ok := c.clusters.Load(cluster); ok {
		return v.(*sync.Map)
	}
	if !create {
		return nil
	}
	v, _ := c.clusters.LoadOrStore(cluster, new(sync.Map))
	return v.(*sync.Map)
}

// Observe implements Cache.
func (c *SyncMap) Observe(cluster string, ordinal int, m Member) bool {
	return c.store(cluster, ordinal, m, true)
}

// Put implements Cache.
func (c *SyncMap) Put(cluster string, ordinal int, m Member) { c.store(cluster, ordinal, m, false) }

func (c *SyncMap) store(cluster string, ordinal int, m Member, checked bool) bool {
	if !validOrdinal(ordinal) {
		return false
	}
	members := c.members(cluster, true)
	rec := new([RecordSize]byte)
	m.encodeInto(rec)
	for {
		failpoints.InCacheUpdate()
		old, loaded := members.Load(ordinal)
		if !loaded {
			if _, raced := members.LoadOrStore(ordinal, rec); !raced {
				return true
			}
			continue
		}
		if checked && olderThanStored(old.(*[RecordSize]byte), m) {
			return false
		}
		if members.CompareAndSwap(ordinal, old, rec) {
			return true
		}
	}
}

// Get implements Cache.
func (c *SyncMap) Get(cluster string, ordinal int) (Member, bool) {
	members := c.members(cluster, false)
	if members == nil {
		return Member{}, false
	}
	v, ok := members.Load(ordinal)
	if !ok {
		return Member{}, false
	}
	return Decode(v.(*[RecordSize]byte))
}

// Remove implements Cache.
func (c *SyncMap) Remove(cluster string, ordinal int) {
	if members := c.members(cluster, false); members != nil {
		failpoints.InCacheUpdate()
		members.Delete(ordinal)
	}
}

// Forget implements Cache.
func (c *SyncMap) Forget(cluster string) {
	failpoints.InCacheUpdate()
	c.clusters.Delete(cluster)
}

// Members implements Cache.
func (c *SyncMap) Members(cluster string) map[int]Member {
	out := map[int]Member{}
	if members := c.members(cluster, false); members != nil {
		members.Range(func(k, v any) bool {
			if m, ok := Decode(v.(*[RecordSize]byte)); ok {
				out[k.(int)] = m
			}
			return true
		})
	}
	return out
}

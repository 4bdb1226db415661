package statecache

import (
	"sync"
	"sync/atomic"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// RingSize is how many versions of each cluster's snapshot the snapshot
// variant keeps readable.
const RingSize = 8

// snapshot is one immutable version of a cluster's members: neither the
// slice nor the records it points to change once published.
type snapshot struct {
	version uint64
	members []*[RecordSize]byte // by ordinal; nil means absent
}

// snapCluster is one cluster of the snapshot variant.
type snapCluster struct {
	mu   sync.Mutex // serialises writers; readers never take it
	cur  atomic.Pointer[snapshot]
	ring [RingSize]*snapshot // the last RingSize versions, by version % RingSize
}

// Snapshot is the write-up's chapter 4.1 design: for each cluster, a ring
// buffer of immutable versioned snapshots, the latest published through an
// atomic.Pointer. Readers load the pointer and read without any lock;
// writers (serialised per cluster) copy the member table (pointers only),
// put a new record in, and publish the result as the next version. Updates
// are checked against the stored record's resourceVersion, so an older
// revision never replaces a newer one.
type Snapshot struct {
	clusters sync.Map // string -> *snapCluster
}

var _ Cache = (*Snapshot)(nil)

// NewSnapshot returns an empty Snapshot cache.
func NewSnapshot() *Snapshot { return &Snapshot{} }

func (c *Snapshot) cluster(name string, create bool) *snapCluster {
	if v, ok := c.clusters.Load(name); ok {
		return v.(*snapCluster)
	}
	if !create {
		return nil
	}
	cl := &snapCluster{}
	empty := &snapshot{}
	cl.ring[0] = empty
	cl.cur.Store(empty)
	v, _ := c.clusters.LoadOrStore(name, cl)
	return v.(*snapCluster)
}

// update publishes the next version of cl with members[ordinal] = rec (nil
// removes it) unless check refuses the current record.
func (cl *snapCluster) update(ordinal int, rec *[RecordSize]byte, check func(*[RecordSize]byte) bool) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	failpoints.InCacheUpdate()
	cur := cl.cur.Load()
	var old *[RecordSize]byte
	if ordinal < len(cur.members) {
		old = cur.members[ordinal]
	}
	if check != nil && !check(old) {
		return false
	}
	if rec == nil && old == nil {
		return true
	}
	n := len(cur.members)
	if rec != nil {
		n = max(n, ordinal+1)
	}
	next := &snapshot{version: cur.version + 1, members: make([]*[RecordSize]byte, n)}
	copy(next.members, cur.members)
	next.members[ordinal] = rec
	for len(next.members) > 0 && next.members[len(next.members)-1] == nil {
		next.members = next.members[:len(next.members)-1]
	}
	cl.ring[next.version%RingSize] = next
	cl.cur.Store(next)
	return true
}

// Observe implements Cache.
func (c *Snapshot) Observe(cluster string, ordinal int, m Member) bool {
	if !validOrdinal(ordinal) {
		return false
	}
	rec := new([RecordSize]byte)
	m.encodeInto(rec)
	return c.cluster(cluster, true).update(ordinal, rec, func(old *[RecordSize]byte) bool { return !olderThanStored(old, m) })
}

// Put implements Cache.
func (c *Snapshot) Put(cluster string, ordinal int, m Member) {
	if !validOrdinal(ordinal) {
		return
	}
	rec := new([RecordSize]byte)
	m.encodeInto(rec)
	c.cluster(cluster, true).update(ordinal, rec, nil)
}

// Get implements Cache.
func (c *Snapshot) Get(cluster string, ordinal int) (Member, bool) {
	cl := c.cluster(cluster, false)
	if cl == nil {
		return Member{}, false
	}
	s := cl.cur.Load()
	if ordinal < 0 || ordinal >= len(s.members) || s.members[ordinal] == nil {
		return Member{}, false
	}
	return Decode(s.members[ordinal])
}

// Remove implements Cache.
func (c *Snapshot) Remove(cluster string, ordinal int) {
	if cl := c.cluster(cluster, false); cl != nil && validOrdinal(ordinal) {
		cl.update(ordinal, nil, nil)
	}
}

// Forget implements Cache.
func (c *Snapshot) Forget(cluster string) {
	failpoints.InCacheUpdate()
	c.clusters.Delete(cluster)
}

// Members implements Cache.
func (c *Snapshot) Members(cluster string) map[int]Member {
	cl := c.cluster(cluster, false)
	if cl == nil {
		return map[int]Member{}
	}
	return decodeAll(cl.cur.Load())
}

func decodeAll(s *snapshot) map[int]Member {
	out := make(map[int]Member, len(s.members))
	for ord, rec := range s.members {
		if rec == nil {
			continue
		}
		if m, ok := Decode(rec); ok {
			out[ord] = m
		}
	}
	return out
}

// Version returns the version of a cluster's latest snapshot (0 before its
// first update).
func (c *Snapshot) Version(cluster string) uint64 {
	cl := c.cluster(cluster, false)
	if cl == nil {
		return 0
	}
	return cl.cur.Load().version
}

// At returns a cluster's members as of an earlier version, while that
// version is still in the ring (the last RingSize versions).
func (c *Snapshot) At(cluster string, version uint64) (map[int]Member, bool) {
	cl := c.cluster(cluster, false)
	if cl == nil {
		return nil, false
	}
	cl.mu.Lock()
	s := cl.ring[version%RingSize]
	cl.mu.Unlock()
	if s == nil || s.version != version {
		return nil, false
	}
	return decodeAll(s), true
}

package statecache

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// RecordSize is the size of one member record, as in the write-up.
const RecordSize = 256

// Member is the decoded state of one member Pod.
type Member struct {
	// Revision is the Pod's resourceVersion as a number (etcd mod revision).
	Revision uint64
	// Ready is true when the Pod's Ready condition is True.
	Ready bool
	// Terminating is true when the Pod has a deletionTimestamp.
	Terminating bool
	// Pod is the Pod's name (truncated to fit the record).
	Pod string
}

const (
	flagPresent = 1 << iota
	flagReady
	flagTerminating
)

// Encode packs m into a fixed-size record.
func (m Member) Encode() (r [RecordSize]byte) {
	r[0] = flagPresent
	if m.Ready {
		r[0] |= flagReady
	}
	if m.Terminating {
		r[0] |= flagTerminating
	}
	binary.LittleEndian.PutUint64(r[1:9], m.Revision)
	n := copy(r[10:], m.Pod)
	r[9] = byte(n)
	return r
}

// Decode unpacks a record; ok is false for an empty record.
func Decode(r *[RecordSize]byte) (m Member, ok bool) {
	if r[0]&flagPresent == 0 {
		return Member{}, false
	}
	m.Ready = r[0]&flagReady != 0
	m.Terminating = r[0]&flagTerminating != 0
	m.Revision = binary.LittleEndian.Uint64(r[1:9])
	m.Pod = string(r[10 : 10+int(r[9])])
	return m, true
}

// Cache is a per-cluster member state cache. Implementations are safe for
// concurrent use.
type Cache interface {
	// Observe stores m for (cluster, ordinal) unless the stored record has a
	// newer revision; it reports whether m was stored.
	Observe(cluster string, ordinal int, m Member) bool
	// Remove drops the record of one member.
	Remove(cluster string, ordinal int)
	// Forget drops every record of a cluster.
	Forget(cluster string)
	// Members returns a copy of a cluster's records, by ordinal.
	Members(cluster string) map[int]Member
}

// Variants lists the cache variants, for flags and scenario validation.
func Variants() []string {
	out := make([]string, 0, len(constructors))
	for n := range constructors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var constructors = map[string]func() Cache{
	"map": func() Cache { return NewMap() },
}

// New returns the named variant.
func New(variant string) (Cache, error) {
	c, ok := constructors[variant]
	if !ok {
		return nil, fmt.Errorf("unknown cache variant %q (known: %s)", variant, strings.Join(Variants(), ", "))
	}
	return c(), nil
}

// Map is the write-up's original: map[int][256]byte per cluster behind one
// mutex that guards both reads and writes.
type Map struct {
	mu       sync.Mutex
	clusters map[string]map[int][RecordSize]byte
}

var _ Cache = (*Map)(nil)

// NewMap returns an empty Map cache.
func NewMap() *Map { return &Map{clusters: map[string]map[int][RecordSize]byte{}} }

// Observe implements Cache.
func (c *Map) Observe(cluster string, ordinal int, m Member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	failpoints.InCacheUpdate()
	members := c.clusters[cluster]
	if members == nil {
		members = map[int][RecordSize]byte{}
		c.clusters[cluster] = members
	}
	if old, ok := members[ordinal]; ok {
		if prev, ok := Decode(&old); ok && prev.Pod == m.Pod && prev.Revision > m.Revision {
			return false
		}
	}
	members[ordinal] = m.Encode()
	return true
}

// Remove implements Cache.
func (c *Map) Remove(cluster string, ordinal int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.clusters[cluster], ordinal)
}

// Forget implements Cache.
func (c *Map) Forget(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

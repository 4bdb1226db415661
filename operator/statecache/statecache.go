package statecache

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
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

// maxPodName is how much of a Pod name fits in a record.
const maxPodName = RecordSize - 10

// Encode packs m into a fixed-size record.
func (m Member) Encode() (r [RecordSize]byte) {
	m.encodeInto(&r)
	return r
}

// encodeInto packs m into r in place (no copy of the record).
func (m Member) encodeInto(r *[RecordSize]byte) {
	*r = [RecordSize]byte{}
	r[0] = flagPresent
	if m.Ready {
		r[0] |= flagReady
	}
	if m.Terminating {
		r[0] |= flagTerminating
	}
	binary.LittleEndian.PutUint64(r[1:9], m.Revision)
	n := copy(r[10:10+maxPodName], m.Pod)
	r[9] = byte(n)
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

// olderThanStored reports whether the stored record is of the same Pod as m
// with a newer revision, reading it in place without allocating.
func olderThanStored(stored *[RecordSize]byte, m Member) bool {
	if stored == nil || stored[0]&flagPresent == 0 {
		return false
	}
	if int(stored[9]) != min(len(m.Pod), maxPodName) || string(stored[10:10+int(stored[9])]) != m.Pod[:min(len(m.Pod), maxPodName)] {
		return false
	}
	return binary.LittleEndian.Uint64(stored[1:9]) > m.Revision
}

// MaxOrdinal is the largest member ordinal a cache stores; Observe and Put
// refuse ordinals outside [0, MaxOrdinal] (the snapshot variant indexes
// members by ordinal).
const MaxOrdinal = 1<<16 - 1

func validOrdinal(ord int) bool { return ord >= 0 && ord <= MaxOrdinal }

// Cache is a per-cluster member state cache. Implementations are safe for
// concurrent use, and every update runs failpoints.InCacheUpdate (with the
// variant's lock held, where it has one).
type Cache interface {
	// Observe stores m for (cluster, ordinal) unless the stored record is
	// of the same Pod with a newer revision; it reports whether m was
	// stored. This is the revision check of the write-up's chapter 3.2.
	Observe(cluster string, ordinal int, m Member) bool
	// Put stores m unconditionally, without the revision check: the
	// stale-overwrite seeded bug's path.
	Put(cluster string, ordinal int, m Member)
	// Get returns one member's record.
	Get(cluster string, ordinal int) (Member, bool)
	// Remove drops the record of one member.
	Remove(cluster string, ordinal int)
	// Forget drops every record of a cluster.
	Forget(cluster string)
	// Members returns a copy of a cluster's records, by ordinal.
	Members(cluster string) map[int]Member
}

// Variant names.
const (
	VariantMap      = "map"
	VariantPtrMap   = "ptrmap"
	VariantSyncMap  = "syncmap"
	VariantSnapshot = "snapshot"
	VariantArena    = "arena"
)

// Descriptions describes each variant, by name, for help texts.
var Descriptions = map[string]string{
	VariantMap:      "map[int][256]byte per cluster behind one mutex (the write-up's original)",
	VariantPtrMap:   "map[int]*[256]byte per cluster behind one mutex (records updated in place)",
	VariantSyncMap:  "sync.Map of clusters, each a sync.Map of *[256]byte, revision check by compare-and-swap",
	VariantSnapshot: "per cluster, immutable versioned snapshots in a ring buffer, published through atomic.Pointer; lock-free reads (chapter 4.1)",
	VariantArena:    "[256]byte slots from a preallocated arena, freed slots zeroed and reused (chapter 4.2)",
}

var constructors = map[string]func() Cache{
	VariantMap:      func() Cache { return NewMap() },
	VariantPtrMap:   func() Cache { return NewPtrMap() },
	VariantSyncMap:  func() Cache { return NewSyncMap() },
	VariantSnapshot: func() Cache { return NewSnapshot() },
	VariantArena:    func() Cache { return NewArena(0) },
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

// New returns the named variant.
func New(variant string) (Cache, error) {
	c, ok := constructors[variant]
	if !ok {
		return nil, fmt.Errorf("unknown cache variant %q (known: %s)", variant, strings.Join(Variants(), ", "))
	}
	return c(), nil
}

// ReadyCounter is implemented by caches that answer the controller's two
// hot questions without decoding records: the same answers as counting
// Members and calling Get, without their allocations.
type ReadyCounter interface {
	// CountReady is how many of the cluster's members are Ready and not
	// terminating.
	CountReady(cluster string) int
	// Has reports whether Get would find the member.
	Has(cluster string, ordinal int) bool
}

// countable reports whether a stored record counts as a Ready,
// non-terminating member.
func countable(r *[RecordSize]byte) bool {
	return r[0]&flagPresent != 0 && r[0]&flagReady != 0 && r[0]&flagTerminating == 0
}

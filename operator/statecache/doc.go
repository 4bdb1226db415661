// Package statecache is the reference operator's local member state cache:
// for each KVCluster, one fixed-size [256]byte record per member ordinal, the
// shape of the incident write-up's map[int][256]byte.
//
// The Pod event handler feeds the cache and the reconciler computes the
// status it writes from it, so a cache that drifts from the truth shows up
// as a status that drifts from the truth. Observe is revision-checked: a
// record with an older resourceVersion never overwrites a newer one of the
// same Pod (Put skips that check; only the stale-overwrite seeded bug uses
// it).
//
// Five variants sit behind the Cache interface, chosen by name (New,
// Variants; the operator's --cache flag and a scenario's operator.cache):
// "map" (the write-up's original, one mutex), "ptrmap" (pointer values
// updated in place), "syncmap" (sync.Map with compare-and-swap), "snapshot"
// (chapter 4.1: a ring buffer of immutable versioned snapshots published
// through atomic.Pointer, lock-free reads) and "arena" (chapter 4.2:
// preallocated [256]byte slots, zeroed and reused). Every update runs
// failpoints.InCacheUpdate, with the variant's lock held where it has one.
// BenchmarkCacheLatency measures them as the write-up's chapter 2.5 does.
package statecache

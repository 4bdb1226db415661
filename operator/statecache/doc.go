// Package statecache is the reference operator's local member state cache:
// for each KVCluster, one fixed-size [256]byte record per member ordinal, the
// shape of the incident write-up's map[int][256]byte.
//
// The reconciler refreshes the cache from the informer's Pods and computes the
// status it writes from the cache, so a cache that drifts from the truth shows
// up as a status that drifts from the truth. Updates are revision-checked:
// a record with an older resourceVersion never overwrites a newer one.
// Variants (pointer values, sync.Map, versioned snapshots, arenas) plug in
// behind the Cache interface; "map" is the write-up's original.
package statecache

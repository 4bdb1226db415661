package bugs

import (
	"fmt"
	"sort"
	"strings"
)

// Seeded bug names.
const (
	// FreezeStatus makes the operator stop writing status after its first
	// status write: the status then drifts from the truth for good.
	FreezeStatus = "freeze-status"
	// StaleOverwrite makes the member cache apply Pod states without
	// comparing revisions (statecache.Cache.Put instead of Observe), so an
	// older Pod state read from a stale listing overwrites a newer one the
	// event handler stored (write-up chapter 3.2).
	StaleOverwrite = "stale-overwrite"
	// DropTombstone makes the Pod delete handler drop deletes the informer
	// only learnt about on relist (client-go's DeletedFinalStateUnknown;
	// "delete-unknown" events), as a delete handler that type-asserts its
	// object to *corev1.Pod does (chapter 3.3): the member stays in the
	// cache for good.
	DropTombstone = "drop-tombstone"
	// LockAcrossIO makes one mutex guard the member cache for both the
	// event handler and the reconcilers, and the reconcilers hold it from
	// reading the cache until their status write returns (chapter 3.1):
	// event handling and every other reconcile stall behind slow API calls.
	LockAcrossIO = "lock-across-io"
	// StatusUpdateClobber makes the operator write status with
	// Status().Update from its cached copy with the resourceVersion cleared
	// (an unconditional PUT) instead of a merge patch with optimistic lock
	// and field owner: a status computed from a stale copy (old spec, old
	// generation) overwrites the newer truth without a conflict.
	StatusUpdateClobber = "status-update-clobber"
	// NoRequeueOnConflict makes the operator drop a failed status write
	// (conflict or any error) without requeueing: the status stays wrong
	// until some unrelated event queues the cluster again.
	NoRequeueOnConflict = "no-requeue-on-conflict"
	// NoEnqueueOnPodUpdate makes the Pod event handler feed Pod updates to
	// the cache but queue the cluster only on Pod create and delete, like a
	// handler.Funcs with no UpdateFunc: a Pod becoming Ready reaches the
	// status only when something else queues the cluster.
	NoEnqueueOnPodUpdate = "no-enqueue-on-pod-update"
	// GenerationPredicate filters Pod updates whose metadata.generation did
	// not change before the handler, as a controller built with
	// WithEventFilter(predicate.GenerationChangedPredicate{}) does for every
	// watched kind: status-only updates, such as a Pod becoming Ready, never
	// reach the cache.
	GenerationPredicate = "generation-predicate"
)

// Table describes every seeded bug, by name.
var Table = map[string]string{
	FreezeStatus:         "writes status once per cluster, then never again (status freezes, drift invariant must fail)",
	StaleOverwrite:       "the member cache stores Pod states without the revision check, so an older state from a stale listing overwrites a newer one (chapter 3.2)",
	DropTombstone:        "the Pod delete handler drops deletes known only from a relist (DeletedFinalStateUnknown), so the member stays in the cache (chapter 3.3)",
	LockAcrossIO:         "one cache mutex is held from reading the cache until the status write returns, so event handling and other reconciles stall behind API calls (chapter 3.1)",
	StatusUpdateClobber:  "status written with Status().Update from the cached copy with resourceVersion cleared: a status computed from a stale copy wins without a conflict",
	NoRequeueOnConflict:  "a conflict or error on the status write is dropped without requeue, so the status stays wrong until an unrelated event",
	NoEnqueueOnPodUpdate: "Pod updates feed the cache but do not queue the cluster (a handler without UpdateFunc): readiness waits for an unrelated event",
	GenerationPredicate:  "Pod updates that leave metadata.generation unchanged are filtered out (GenerationChangedPredicate on every watch): readiness never reaches the cache",
}

// Names lists the seeded bugs in order.
func Names() []string {
	out := make([]string, 0, len(Table))
	for n := range Table {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Set is a set of enabled bugs.
type Set map[string]bool

// Parse validates names and returns the set.
func Parse(names []string) (Set, error) {
	s := Set{}
	for _, n := range names {
		if _, ok := Table[n]; !ok {
			return nil, fmt.Errorf("unknown bug %q (known: %s)", n, strings.Join(Names(), ", "))
		}
		s[n] = true
	}
	return s, nil
}

// On reports whether a bug is enabled.
func (s Set) On(name string) bool { return s[name] }

package failpoints

import "github.com/pingcap/failpoint"

// Path is the import path that prefixes every failpoint name of this package.
const Path = "github.com/driftlab/driftlab/operator/failpoints"

// Failpoint names (without Path).
const (
	NameBeforeStatusWrite = "beforeStatusWrite"
	NameInCacheUpdate     = "inCacheUpdate"
	NameInEventHandler    = "inEventHandler"
	NameBeforeRequeue     = "beforeRequeue"
)

// Names lists the operator's failpoints, in order.
func Names() []string {
	return []string{NameBeforeStatusWrite, NameBeforeRequeue, NameInCacheUpdate, NameInEventHandler}
}

// BeforeStatusWrite runs just before the operator writes a KVCluster status.
func BeforeStatusWrite() {
	failpoint.Inject("beforeStatusWrite", func() {})
}

// InCacheUpdate runs inside a member-cache update, with the cache's lock held.
func InCacheUpdate() {
	failpoint.Inject("inCacheUpdate", func() {})
}

// InEventHandler runs when the operator's informer hands it a Pod event,
// before the event reaches the cache or the work queue.
func InEventHandler() {
	failpoint.Inject("inEventHandler", func() {})
}

// BeforeRequeue runs before a reconcile that failed returns its error and
// so is requeued with back-off.
func BeforeRequeue() {
	failpoint.Inject("beforeRequeue", func() {})
}

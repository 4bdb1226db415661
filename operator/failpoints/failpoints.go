package failpoints

import (
	"fmt"
	"sync/atomic"

	"github.com/pingcap/failpoint"
)

// Path is the import path that prefixes every failpoint name of this package.
const Path = "github.com/driftlab/driftlab/operator/failpoints"

// Failpoint names (without Path).
const (
	NameBeforeStatusWrite = "beforeStatusWrite"
	NameInCacheUpdate     = "inCacheUpdate"
	NameInEventHandler    = "inEventHandler"
	NameBeforeRequeue     = "beforeRequeue"
)

// nameProbe is a failpoint that only Rewritten evaluates.
const nameProbe = "buildProbe"

// Names lists the operator's failpoints, in order.
func Names() []string {
	return []string{NameBeforeStatusWrite, NameBeforeRequeue, NameInCacheUpdate, NameInEventHandler}
}

// hits counts, per failpoint, how often its term fired (the injected body
// runs after the term's action, with a nil value for sleep).
var hits = map[string]*atomic.Int64{
	NameBeforeStatusWrite: new(atomic.Int64),
	NameInCacheUpdate:     new(atomic.Int64),
	NameInEventHandler:    new(atomic.Int64),
	NameBeforeRequeue:     new(atomic.Int64),
}

// BeforeStatusWrite runs just before the operator writes a KVCluster status.
func BeforeStatusWrite() {
	failpoint.Inject("beforeStatusWrite", func() { hits[NameBeforeStatusWrite].Add(1) })
}

// InCacheUpdate runs inside a member-cache update, with the cache's lock held.
func InCacheUpdate() {
	failpoint.Inject("inCacheUpdate", func() { hits[NameInCacheUpdate].Add(1) })
}

// InEventHandler runs when the operator's informer hands it a Pod event,
// before the event reaches the cache or the work queue.
func InEventHandler() {
	failpoint.Inject("inEventHandler", func() { hits[NameInEventHandler].Add(1) })
}

// BeforeRequeue runs before a reconcile that failed returns its error and
// so is requeued with back-off.
func BeforeRequeue() {
	failpoint.Inject("beforeRequeue", func() { hits[NameBeforeRequeue].Add(1) })
}

// probe reports whether its marker was rewritten into a real failpoint
// evaluation (only then can the enabled probe set on).
func probe() (on bool) {
	failpoint.Inject("buildProbe", func() { on = true })
	return on
}

// Rewritten reports whether this binary was built from a tree whose
// failpoints failpoint-ctl rewrote (make failpoints-enable, or the snapshot
// of make test-failpoints). Without the rewrite the markers are empty and
// enabling a failpoint has no effect.
func Rewritten() bool {
	if err := failpoint.Enable(Path+"/"+nameProbe, "return(true)"); err != nil {
		return false
	}
	defer func() { _ = failpoint.Disable(Path + "/" + nameProbe) }()
	return probe()
}

// Enable switches failpoint name (one of Names) on with a gofail-style term
// such as "sleep(200)" and resets its hit count.
func Enable(name, term string) error {
	h, ok := hits[name]
	if !ok {
		return fmt.Errorf("unknown operator failpoint %q", name)
	}
	if !Rewritten() {
		return fmt.Errorf("operator failpoint %s: this binary was built without the failpoint rewrite (make failpoints-enable)", name)
	}
	h.Store(0)
	return failpoint.Enable(Path+"/"+name, term)
}

// Disable switches failpoint name off and returns how often it fired since
// it was enabled.
func Disable(name string) (int64, error) {
	h, ok := hits[name]
	if !ok {
		return 0, fmt.Errorf("unknown operator failpoint %q", name)
	}
	err := failpoint.Disable(Path + "/" + name)
	return h.Load(), err
}

// Hits returns how often failpoint name fired since it was last enabled.
func Hits(name string) int64 {
	if h, ok := hits[name]; ok {
		return h.Load()
	}
	return 0
}

package failpoint

import (
	"path"
	"sort"

	"github.com/driftlab/driftlab/operator/failpoints"
)

// Systems a failpoint belongs to.
const (
	// SystemEtcd is etcd's gofail failpoints, in the harness's embedded etcd.
	SystemEtcd = "etcd"
	// SystemOperator is driftlab's pingcap/failpoint markers in the
	// reference operator's process.
	SystemOperator = "operator"
)

// Info describes one failpoint of the catalogue.
type Info struct {
	// Name is the name a scenario uses (gofail's variable name, or the
	// operator's failpoint name without its package path).
	Name string
	// System is SystemEtcd or SystemOperator.
	System string
	// File is where the marker is: a file of etcd's server module, or of
	// driftlab.
	File string
	// Type is the failpoint's value type in etcd ("struct{}" or "string");
	// empty for operator failpoints, which take no value.
	Type string
	// What says what the failpoint interrupts, for README and error
	// messages.
	What string
}

// etcdFailpoints lists every gofail failpoint of go.etcd.io/etcd/server/v3
// v3.7.3 (`// gofail: var NAME TYPE`), checked against the module's source
// by TestCatalogueMatchesEtcdSource.
var etcdFailpoints = []Info{
	{Name: "afterCommit", File: "storage/backend/batch_tx.go", Type: "struct{}", What: "after the backend (bbolt) transaction commit"},
	{Name: "afterIsMemberExist", File: "etcdserver/api/membership/cluster.go", Type: "struct{}"},
	{Name: "afterStartDBTxn", File: "storage/backend/backend.go", Type: "struct{}", What: "after a bbolt transaction begins"},
	{Name: "afterWritebackBuf", File: "storage/backend/batch_tx.go", Type: "struct{}", What: "after the write buffer is copied to the read buffer"},
	{Name: "applyAfterOpenSnapshot", File: "etcdserver/server.go", Type: "struct{}"},
	{Name: "applyBeforeOpenSnapshot", File: "etcdserver/server.go", Type: "struct{}"},
	{Name: "beforeApplyOneConfChange", File: "etcdserver/server.go", Type: "struct{}"},
	{Name: "beforeApplyOneEntryNormal", File: "etcdserver/server.go", Type: "struct{}", What: "before each committed entry is applied to the store: every write is applied later"},
	{Name: "beforeCheckpointInLeaseRenew", File: "lease/lessor.go", Type: "struct{}"},
	{Name: "beforeCommit", File: "storage/backend/batch_tx.go", Type: "struct{}", What: "before the backend (bbolt) transaction commit, holding the batch lock"},
	{Name: "beforeLookupWhenForwardLeaseTimeToLive", File: "lease/leasehttp/http.go", Type: "struct{}"},
	{Name: "beforeLookupWhenLeaseTimeToLive", File: "etcdserver/v3_server.go", Type: "struct{}"},
	{Name: "beforePublishing", File: "etcdserver/server.go", Type: "struct{}"},
	{Name: "beforeRangeStreamChunk", File: "etcdserver/v3_server.go", Type: "struct{}"},
	{Name: "beforeSendWatchResponse", File: "etcdserver/api/v3rpc/watch.go", Type: "struct{}", What: "before each watch response is sent on a gRPC watch stream: every watch event (the apiserver's watch cache included) arrives later"},
	{Name: "beforeServeHTTPLeaseRenew", File: "lease/leasehttp/http.go", Type: "struct{}"},
	{Name: "beforeStartDBTxn", File: "storage/backend/backend.go", Type: "struct{}", What: "before a bbolt transaction begins"},
	{Name: "beforeWritebackBuf", File: "storage/backend/batch_tx.go", Type: "struct{}", What: "before the write buffer is copied to the read buffer, holding the read buffer's lock"},
	{Name: "commitAfterPreCommitHook", File: "storage/backend/batch_tx.go", Type: "struct{}"},
	{Name: "commitBeforePreCommitHook", File: "storage/backend/batch_tx.go", Type: "struct{}"},
	{Name: "compactAfterAcquiredBatchTxLock", File: "storage/mvcc/kvstore_compaction.go", Type: "struct{}"},
	{Name: "compactAfterCommitBatch", File: "storage/mvcc/kvstore_compaction.go", Type: "struct{}"},
	{Name: "compactAfterCommitScheduledCompact", File: "storage/mvcc/kvstore.go", Type: "struct{}"},
	{Name: "compactAfterSetFinishedCompact", File: "storage/mvcc/kvstore_compaction.go", Type: "struct{}"},
	{Name: "compactBeforeCommitBatch", File: "storage/mvcc/kvstore_compaction.go", Type: "struct{}"},
	{Name: "compactBeforeCommitScheduledCompact", File: "storage/mvcc/kvstore.go", Type: "struct{}"},
	{Name: "compactBeforeSetFinishedCompact", File: "storage/mvcc/kvstore_compaction.go", Type: "struct{}"},
	{Name: "defragBeforeCopy", File: "storage/backend/backend.go", Type: "struct{}"},
	{Name: "defragBeforeRename", File: "storage/backend/backend.go", Type: "struct{}"},
	{Name: "defragOpenFileError", File: "storage/backend/backend.go", Type: "string"},
	{Name: "defragdbFail", File: "storage/backend/backend.go", Type: "string"},
	{Name: "raftAfterApplySnap", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftAfterSave", File: "etcdserver/raft.go", Type: "struct{}", What: "after raft's hard state and entries are saved to the WAL"},
	{Name: "raftAfterSaveSnap", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftAfterWALRelease", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftBeforeAdvance", File: "etcdserver/raft.go", Type: "struct{}", What: "before the raft loop advances to the next Ready batch"},
	{Name: "raftBeforeApplySnap", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftBeforeFollowerSend", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftBeforeLeaderSend", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftBeforeSave", File: "etcdserver/raft.go", Type: "struct{}", What: "in the raft loop, before hard state and entries are saved to the WAL: every write waits"},
	{Name: "raftBeforeSaveSnap", File: "etcdserver/raft.go", Type: "struct{}"},
	{Name: "raftBeforeWALSaveSnaphot", File: "storage/storage.go", Type: "struct{}"},
	{Name: "raftDropHeartbeat", File: "etcdserver/api/rafthttp/stream.go", Type: "struct{}"},
	{Name: "snapDBDirSyncError", File: "etcdserver/api/snap/db.go", Type: "string"},
	{Name: "snapDBRenameBeforeDirSync", File: "etcdserver/api/snap/db.go", Type: "struct{}"},
	{Name: "walAfterSync", File: "storage/wal/wal.go", Type: "struct{}", What: "after the WAL fdatasync of a write"},
	{Name: "walBeforeSync", File: "storage/wal/wal.go", Type: "struct{}", What: "before the WAL fdatasync of a write: every write waits (not counted in etcd_disk_wal_fsync_duration_seconds)"},
}

// operatorWhat describes the operator's failpoints (operator/failpoints).
var operatorWhat = map[string]string{
	failpoints.NameBeforeStatusWrite: "just before the operator writes a KVCluster status (Status().Patch)",
	failpoints.NameBeforeRequeue:     "before a failed reconcile returns its error and is requeued with back-off",
	failpoints.NameInCacheUpdate:     "inside a member-cache update, with the cache's lock held",
	failpoints.NameInEventHandler:    "when the informer hands the operator a Pod event, before the cache and the work queue",
}

var catalogue = func() map[string]Info {
	m := map[string]Info{}
	for _, fp := range etcdFailpoints {
		fp.System = SystemEtcd
		if fp.What == "" {
			fp.What = "in etcd's " + path.Dir(fp.File) + " package (see the marker in " + path.Base(fp.File) + ")"
		}
		m[fp.Name] = fp
	}
	for _, n := range failpoints.Names() {
		m[n] = Info{Name: n, System: SystemOperator, File: "operator/failpoints/failpoints.go", What: operatorWhat[n]}
	}
	return m
}()

// Lookup returns the failpoint called name.
func Lookup(name string) (Info, bool) {
	fp, ok := catalogue[name]
	return fp, ok
}

// Catalogue returns every known failpoint, operator ones first, then etcd's,
// each group by name.
func Catalogue() []Info {
	out := make([]Info, 0, len(catalogue))
	for _, fp := range catalogue {
		out = append(out, fp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].System != out[j].System {
			return out[i].System == SystemOperator
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Names returns the names of every known failpoint, in Catalogue order.
func Names() []string {
	c := Catalogue()
	out := make([]string, len(c))
	for i, fp := range c {
		out[i] = fp.Name
	}
	return out
}

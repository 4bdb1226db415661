// Package fsyncfs injects fsync latency with a FUSE passthrough ("loopback")
// file system: Mount exposes a backing directory at a mountpoint, forwards
// every operation to the backing files unchanged, and makes each fsync or
// fdatasync (FUSE FSYNC) and each directory fsync (FUSE FSYNCDIR) wait a
// configurable, seeded random Delay before the real fsync runs. driftlab
// points etcd's WAL directory (embed.Config.WalDir, a subdirectory of the
// mountpoint, because etcd creates "<WalDir>.tmp" next to it and renames it
// into place) at such a mount, which is what Chaos Mesh's IOChaos
// "methods: [fsync]" latency does in a cluster. It needs Linux, /dev/fuse and
// root (mount(2) directly) or a fusermount binary: call Available first and
// report the fault as "skipped: <reason>" when it fails. The hazard: a process
// that serves a FUSE mount and also has files open on it hangs unkillably if it
// dies (for example an unrecovered panic in any goroutine) with those files
// open, because the kernel waits for replies from the dead server; close the
// users of the mount (etcd) before Close, call Close from deferred or Cleanup
// code, call CleanStale on the mountpoint at start-up to free a mount left by
// a crashed run, and serve the mount from a child process where a crash of
// the main process must not wedge it.
package fsyncfs

// Package fsyncfs injects fsync latency with a FUSE passthrough ("loopback")
// mount built on go-fuse: MountDir shows a backing directory at a mountpoint,
// forwards every operation to it, and makes each file fsync/fdatasync (FUSE
// FSYNC) and directory fsync (FUSE FSYNCDIR) wait a seeded random Delay,
// changeable with SetDelay, before the real fsync. driftlab puts etcd's WAL
// there (embed.Config.WalDir must be a subdirectory of the mountpoint: etcd
// renames "<WalDir>.tmp" into place), like Chaos Mesh's IOChaos fsync latency.
// It needs Linux, /dev/fuse and root or fusermount; if Available fails, report
// the fault as "skipped: <reason>". Hazard: a process that serves a mount and
// uses it cannot finish dying (panic, even SIGKILL) while one of its own
// requests, such as a delayed fsync, is in flight there; it and the mount stay
// wedged until the FUSE connection is aborted. So close etcd before Close,
// call Close from deferred code, run CleanStale on the mountpoint at start-up,
// use Abort in crash handlers, or serve the mount from another process.
package fsyncfs

// Package watchstorm loads etcd's watch machinery the way real clusters do
// when watches go bad: a sustained churn of watchers re-created from an old
// revision (as when every client re-watches from an old resourceVersion after
// an apiserver restart) and slow consumers that never read their stream.
//
// An unsynced watcher makes etcd's syncWatchersLoop re-read history from the
// watcher's start revision, up to 512 watchers every 100 ms, holding the
// store lock so writes wait. Watchers opened once catch up and then cost
// almost nothing, so the pressure here is sustained: each watcher is
// cancelled and re-created as soon as it has been served. Slow consumers use
// the raw gRPC watch stream and never call Recv, so gRPC flow control backs
// up into etcd and their watchers become victims.
//
// Preload writes the history (outside the Kubernetes registry) that
// re-watches replay; its size sets the cost of every re-watch.
package watchstorm

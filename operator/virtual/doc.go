// Package virtual is driftlab's deterministic backend: a scenario runs
// against a single-threaded model of the control plane, on a virtual clock,
// with the reference operator's real Reconcile code, and yields the same
// kind of history as the local backend, so that invariant.Check judges it
// unchanged. One scenario and seed always give the same history, event for
// event; Result.TraceHash is the proof.
//
// # The model
//
// A kernel runs events one at a time in (virtual time, sequence) order.
// Every random choice comes from a named PCG stream derived from the
// scenario seed with workload.Stream (the workload, the kubelet's ready
// delays, and one stream per watch for delivery delays), so adding draws to
// one stream never shifts another. Nothing on the simulated path reads the
// wall clock or the global rand, and no map is iterated where the order
// matters. A broken invariant of the model itself panics with
// HarnessBugPrefix: it is a driftlab bug, never an operator finding.
//
// The store models etcd and kube-apiserver's registry: one global revision;
// an object's resourceVersion is the revision of its last write; a merge
// patch carrying a stale resourceVersion (client.MergeFrom with optimistic
// lock) fails with a real apierrors Conflict, and so does a Delete whose
// UID or resourceVersion precondition does not hold; a KVCluster's
// generation is bumped when its spec changes, not on metadata or status
// changes; the status subresource changes only status, the main resource
// never changes status; a patch that changes nothing writes nothing. Member
// Pods are never bound to a node, so, as in kube-apiserver, a Delete removes
// them at once. A write commits Options.CommitLatency after it is issued
// (where a WAL fsync delay will act); commits never overtake each other.
//
// Each commit goes, at its commit time, to the truth recorder (the tracker
// every backend uses, sim/subject, with the reference operator's subject:
// object, truth and reported records, and the Pods' records) and to
// every watch: the operator's two informers (KVClusters; Pods that carry
// the cluster label) and the simulated kubelet's. Each watch delays every
// event by a seeded draw in [DeliveryMin, DeliveryMax] and keeps its order.
// An informer updates its cache, then calls its handler; the operator's
// Get and List read those caches, so they can be stale, as with
// controller-runtime. Where controller-runtime's cache returns deep
// copies, the model shares what the operator only reads (List's Pods, all
// of a Get's KVCluster but its status, the answer of a write); the tests
// run every scenario and seeded bug with checkShared, which fails a run
// whose operator changes anything shared. An informer that relists (at a restart, after a
// withheld stretch, after a watch too old for the apiserver's watch cache)
// delivers only the latest state of each object: add, update, or
// "delete-unknown" (client-go's DeletedFinalStateUnknown tombstone, with
// the last state it knew) for an object that went away unseen.
//
// Update and Status().Update are PUTs: a resourceVersion in the object is
// a precondition (Conflict when stale), an empty one makes the update
// unconditional, as kube-apiserver allows for custom resources and Pods.
//
// The operator side is controller.Reconciler with a client.Client backed by
// the model, the scenario's statecache variant and seeded bugs, and a
// history.Sink on the virtual clock. Informer events go through the same
// steps as the controller's wiring (record the event, feed the member
// cache, queue the cluster) into a work queue with client-go's semantics: a
// key added while queued is queued once, a key added while being processed
// is processed again afterwards, failures back off per key from 5 ms,
// doubling. Options.Workers workers (default 4, as the operator process
// runs) take keys; each runs Reconcile atomically at the instant it starts:
// the world does not change during it. Its compute time
// (Options.ReconcileTime) is charged before its first request, and each
// write blocks it until the write commits, so the worker stays busy for the
// reconcile's modelled duration and its records carry the times its
// requests returned.
//
// The simulated kubelet marks each new member Pod Ready after
// kubelet.Sampler's delay for that Pod and incarnation, counted from when
// its watch delivered the Pod. The workload applies workload.NewOps's
// operations (made one at a time, Generate's in order) with
// workload.Apply, each at its due time or as soon as the one before it
// returned. The harness then waits until invariant.Truth says
// every cluster's status matches the truth, or until ConvergeWithin has
// passed, and goes on for Options.Settle before the run ends.
//
// # Speed
//
// A run reuses what it can without changing what it models: its records
// go into pooled chunks of 512; a second goroutine (recordStream) sorts the
// final ones by (time, order), checks them with invariant.Checker, hashes
// and counts them, and writes them to Options.Dir's history.jsonl, while the
// run goes on, then gives the chunk back. Only a run that returns its
// Records (no Dir, no Options.Verdict, what sweep, shrink and the matrix
// use) keeps them, so a run's memory does not grow with its records, and a
// killed run leaves its history up to shortly before it died.
// Options.Context interrupts a run between two slices of a few thousand
// events. The Pod informer keeps an index by namespace and cluster
// label that answers the operator's member listing (checked against a
// full scan under checkShared); patches are validated in one pass and
// merged into the typed object without a JSON round trip, and the
// workload's own patches (workload.Patch) apply without their JSON. The
// library leaves the GC target to the process: ManyRunsGCPercent is what
// driftlab's many-run commands set. BenchmarkBaseline reports simulated
// seconds per wall and CPU second, runs per CPU-hour and allocations per
// event at the default, at ManyRunsGCPercent, and as a verdict run;
// `make bench-virtual` runs it built with cmd/driftlab/default.pgo, the
// profile go build uses for bin/driftlab (PGO; `make pgo` refreshes it
// from this benchmark). docs/design.md ("Speed") holds the figures.
//
// # Faults
//
// The scenario's faults run in the model from the same YAML, inside their
// windows (time zero is the workload's start, or after the afterOps-th
// operation), with fault-start and fault-stop records and a measured
// effect in the summary, as on the local backend. Each fault draws from its
// own stream ("fault/<index>/<type>"), so adding one never shifts the
// workload's, the kubelet's or another fault's draws.
//
//   - wal-fsync-delay: while on, writes go through a group commit. A write
//     joins the fsync that starts next (at once on an idle disk, else when
//     the running one ends) and commits when it ends; each fsync takes
//     CommitLatency plus, with the fault's probability, delay +
//     uniform[0, jitter). Commits stay FIFO, so a queue forms when writes
//     come faster than fsyncs end.
//   - network-retransmit: each chunk on the link (apiserver-etcd: write
//     requests, their answers and the watch stream of each resource;
//     operator-apiserver: the operator's requests, answers and watch
//     deliveries) is lost with the fault's probability and resent after
//     an RTO that starts at minRTO and doubles per consecutive loss up to
//     maxRTO — netproxy.RetransmitModel.Retransmit, the local toxic's
//     function — plus the fixed latency. With a burst, a transmission
//     inside one of the seeded blackouts (netproxy.BurstSchedule, the
//     local proxy's schedule from the same stream of the seed) is lost
//     with the burst's loss, checked at each retransmission, and a chunk
//     queued behind a stalled one is first sent when its lane delivers
//     again. A lane keeps its order (a stall holds back what
//     follows, also after the window): the operator's connection is one
//     lane, each resource's etcd watch is one; requests to etcd do not
//     block each other. resetConnections on operator-apiserver drops the
//     operator's watches: its informers watch again from their last
//     revision, served from the log of the last 75 s (kube-apiserver's
//     watch cache) or answered "410 Gone", and then they relist.
//     With a fault on operator-apiserver, the operator's one HTTP/2
//     connection has client-go's health check (operator.env
//     HTTP2_READ_IDLE_TIMEOUT_SECONDS and HTTP2_PING_TIMEOUT_SECONDS,
//     default 30 and 15; no other operator.env key is accepted): after
//     readIdle without a frame arriving, a ping crosses the link and the
//     connection closes when its answer is not back within the ping
//     timeout. Frames' arrivals are computed ahead of the clock in lane
//     order, so the silence and the close are decided when a frame that
//     ends it is computed (or by an idle timer). Requests whose answer
//     would come after the close fail with "http2: client connection
//     lost" at the close (those that did not reach the apiserver write
//     nothing); every watch ends ("connection-lost" watch-end record),
//     its informer is blind, and its reflector lists again after
//     client-go's backoff (0.8 s doubling to 30 s, jitter up to +100%,
//     starting over 2 minutes after it last did; a seeded stream per
//     reflector): the List crosses the link on a new connection (which a
//     burst with established spares) and fails the same way if that one
//     closes first; its answer replays the difference (relist record).
//     Batched Deletes already answered are not failed by a close, but
//     one that would reach the apiserver after it is dropped (it writes
//     nothing): commits are a FIFO, and one committed at its far arrival
//     would hold every later write of the run behind it.
//   - watcher-exhaustion: etcd's sync loop runs every 100 ms from the
//     window's start and holds the store lock for history × 2 µs +
//     min(watchers, 512) × 20 µs (±20%, at most 95 ms), with watchers =
//     clients × watchers + slowConsumers (churned watchers are always
//     unsynced); a commit that falls in a hold waits for its end, and its
//     watch events with it.
//   - gc-assist-pressure: every cycle of the growth (1/rate) starts with a
//     pause of the operator's process — its worker, its requests and its
//     event handling wait — of 0.5–1.5 × entries × 60 ns (half that when
//     operator.gomaxprocs is not 1), at most 60% of the cycle.
//
// The Sieve perturbations (virtual only; the local backend reports them
// skipped):
//
//   - stale-read: the operator's Get and List answer from its informers'
//     view of lag ago (a lagging apiserver): its writes then conflict or
//     act on old state.
//   - withhold-events: the operator's informers (pods, kvclusters or all)
//     drop events for the window, cache and handler alike, then relist:
//     only the latest state per object, withheld deletes as
//     delete-unknown.
//   - crash-restart: the next reconcile in the window dies at its 1st to
//     4th client call (seeded; before it returns if it makes fewer calls;
//     idle at the window's end if none ran): the calls before it happened,
//     nothing after; the process's reconciler and member cache, work queue
//     and informers are lost, and after restartDelay a new incarnation
//     lists everything (add events) and starts over.
//
// A fault type with no model (failpoint) is reported skipped and fails
// the run's "faults" check.
//
// # Known gaps against a real control plane
//
//   - The informer → handler → work-queue wiring is the model's; the
//     handlers themselves are the controller's (Reconciler.OnPodEvent,
//     Reconciler.OnClusterEvent).
//   - Reconcile is atomic and sees the caches as they were when it started;
//     a real reconcile can observe informer updates between its reads.
//     All of a reconcile's writes are linearised in the store when it runs;
//     their commits, and the clock of the reconcile, follow one another.
//   - Revisions are assigned when a write is issued. A stall on the link to
//     etcd can make writes to different objects commit out of revision
//     order (writes to one object stay in order); watchers then see them in
//     commit order.
//   - A run of consecutive Deletes in one reconcile is answered at once and
//     committed in key order at the next other request (or when the
//     reconcile reports its end), because the reference operator deletes
//     surplus members while ranging over a map; only the revision order of
//     those deletions differs from a real run.
//   - Reconciles are atomic, so two workers never interleave inside one,
//     and a lock held across a reconcile's I/O (the lock-across-io bug)
//     blocks nothing. A FIFO queue: the priority queue controller-runtime
//     enables by default orders by priority first; all our items have the
//     default priority. The global 10 qps retry
//     bucket of the default rate limiter is not modelled, only the per-key
//     exponential backoff. No informer resyncs, no watch bookmarks; the
//     apiserver's watch cache is only a 75 s log for re-watches, and etcd
//     is never compacted within a run.
//   - No managedFields or field ownership, no server-side apply, no
//     admission, no OpenAPI validation or defaulting beyond what the types
//     do, no finalizers, no garbage collector, no graceful deletion (no
//     Pod is ever bound), no generateName, no dry run, no field selectors.
//     Only JSON merge patches and PUTs are modelled; unmodelled client
//     calls panic with HarnessBugPrefix.
//   - The controller's meta.SetStatusCondition stamps LastTransitionTime
//     with the wall clock. That value reaches stored objects but never the
//     history, so it cannot change a trace; a clock on the Reconciler would
//     close the gap.
//   - Commit latency is one constant per write outside an fsync fault; watch
//     delivery delay is uniform and independent per event. kube-apiserver's
//     own writes (Events, leases, endpoints) are not modelled, so under an
//     fsync delay the local backend's queue is longer (its median status
//     latency under a 100 ms delay was 1–1.7× the model's).
//   - Fault models are calibrated, not mechanistic: the sync loop's lock
//     hold and the GC pause are linear in the fault's parameters, fitted
//     to measurements on the 2-core machine (docs/design.md); a chunk is
//     one request, answer or watch event, where TCP may coalesce several.
//     watcher-exhaustion's watcher cap (maxConcurrentStreams) is not
//     modelled. resetConnections on apiserver-etcd only counts.
package virtual

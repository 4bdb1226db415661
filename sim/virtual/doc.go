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
// Each commit goes, at its commit time, to the truth recorder (the same
// rules as the local backend's etcd watcher: cluster-spec, cluster-status,
// pod-created, pod-ready, pod-unready, pod-deleted, cluster-deleted) and to
// every watch: the operator's two informers (KVClusters; Pods that carry
// the cluster label) and the simulated kubelet's. Each watch delays every
// event by a seeded draw in [DeliveryMin, DeliveryMax] and keeps its order.
// An informer updates its cache, then calls its handler; the operator's
// Get and List read those caches, so they can be stale, as with
// controller-runtime.
//
// The operator side is controller.Reconciler with a client.Client backed by
// the model, the scenario's statecache variant and seeded bugs, and a
// history.Sink on the virtual clock. Informer events go through the same
// steps as the controller's wiring (record the event, feed the member
// cache, queue the cluster) into a work queue with client-go's semantics: a
// key added while queued is queued once, a key added while being processed
// is processed again afterwards, failures back off per key from 5 ms,
// doubling. One worker runs Reconcile atomically at the instant it starts:
// the world does not change during it. Its compute time
// (Options.ReconcileTime) is charged before its first request, and each
// write blocks it until the write commits, so the worker stays busy for the
// reconcile's modelled duration and its records carry the times its
// requests returned.
//
// The simulated kubelet marks each new member Pod Ready after
// kubelet.Sampler's delay for that Pod and incarnation, counted from when
// its watch delivered the Pod. The workload applies workload.Generate's
// operations with workload.Apply, each at its due time or as soon as the one
// before it returned. The harness then waits until invariant.Truth says
// every cluster's status matches the truth, or until ConvergeWithin has
// passed, and goes on for Options.Settle before the run ends.
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
//   - A run of consecutive Deletes in one reconcile is answered at once and
//     committed in key order at the next other request (or when the
//     reconcile reports its end), because the reference operator deletes
//     surplus members while ranging over a map; only the revision order of
//     those deletions differs from a real run.
//   - One worker (MaxConcurrentReconciles 1), a FIFO queue: the priority
//     queue controller-runtime enables by default orders by priority first;
//     all our items have the default priority. The global 10 qps retry
//     bucket of the default rate limiter is not modelled, only the per-key
//     exponential backoff. No informer resyncs, no watch bookmarks, no
//     "too old resource version" relists, no watch cache in the apiserver.
//   - No managedFields or field ownership, no server-side apply, no
//     admission, no OpenAPI validation or defaulting beyond what the types
//     do, no finalizers, no garbage collector, no graceful deletion (no
//     Pod is ever bound), no generateName, no dry run, no field selectors.
//     Only JSON merge patches are modelled; unmodelled client calls panic
//     with HarnessBugPrefix.
//   - The controller's meta.SetStatusCondition stamps LastTransitionTime
//     with the wall clock. That value reaches stored objects but never the
//     history, so it cannot change a trace; a clock on the Reconciler would
//     close the gap.
//   - Commit latency is one constant per write and the commit pipeline is
//     FIFO without group commit; watch delivery delay is uniform and
//     independent per event. Faults are not modelled yet: a scenario with
//     faults runs without them, records a fault-skipped record for each, and
//     fails the "faults" check of its summary, as a fault the local backend
//     cannot run does.
package virtual

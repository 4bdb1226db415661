package virtual

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
)

// Epoch is the wall-clock instant virtual time zero stands for. Timestamps
// the model writes into objects (creationTimestamp, kubelet conditions) are
// Epoch plus the virtual time, so they replay exactly.
var Epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// objKind is a kind of object the model stores.
type objKind uint8

const (
	kindCluster objKind = iota + 1
	kindPod
)

var (
	grClusters = schema.GroupResource{Group: kvv1.GroupVersion.Group, Resource: "kvclusters"}
	grPods     = schema.GroupResource{Resource: "pods"}
	gvkCluster = kvv1.GroupVersion.WithKind("KVCluster")
	gvkPod     = corev1.SchemeGroupVersion.WithKind("Pod")
	// tmCluster and tmPod are what SetGroupVersionKind(gvkCluster) and
	// SetGroupVersionKind(gvkPod) set, made once.
	tmCluster = typeMetaFor(gvkCluster)
	tmPod     = typeMetaFor(gvkPod)
)

func typeMetaFor(gvk schema.GroupVersionKind) metav1.TypeMeta {
	var tm metav1.TypeMeta
	tm.SetGroupVersionKind(gvk)
	return tm
}

// typeMeta returns the TypeMeta of a modelled object.
func typeMeta(obj client.Object) *metav1.TypeMeta {
	switch o := obj.(type) {
	case *kvv1.KVCluster:
		return &o.TypeMeta
	case *corev1.Pod:
		return &o.TypeMeta
	}
	harnessBug("object type %T is not modelled", obj)
	return nil
}

func (k objKind) gr() schema.GroupResource {
	if k == kindPod {
		return grPods
	}
	return grClusters
}

// kindOf returns the kind of a typed object; other types are a harness bug
// (the model stores only what the reference operator touches).
func kindOf(obj client.Object) objKind {
	switch obj.(type) {
	case *kvv1.KVCluster:
		return kindCluster
	case *corev1.Pod:
		return kindPod
	}
	harnessBug("object type %T is not modelled", obj)
	return 0
}

// objKey names a stored object.
type objKey struct {
	kind     objKind
	ns, name string
}

func keyOf(obj client.Object) objKey {
	return objKey{kind: kindOf(obj), ns: obj.GetNamespace(), name: obj.GetName()}
}

// nn is "namespace/name".
func (k objKey) nn() string { return k.ns + "/" + k.name }

// commit is one committed write as watchers see it. For a deletion, obj is
// the object's last state stamped with the deletion's revision.
type commit struct {
	rev     int64
	key     objKey
	nn      string        // key.nn()
	prev    client.Object // nil on create
	obj     client.Object
	deleted bool
	// apiAt is when the event reached kube-apiserver over its watch on
	// etcd: the commit time unless a fault stalls that link.
	apiAt time.Duration
	// seq numbers commits in the order they happened (faults on the link
	// to etcd can commit writes to different objects out of revision
	// order).
	seq int64
}

// store is the modelled etcd + kube-apiserver registry: one global revision,
// objects whose resourceVersion is the revision of their last write,
// optimistic concurrency, generation and status-subresource rules, and a
// FIFO commit pipeline. Stored objects are never changed in place: every
// write stores a fresh object, which may share unchanged maps, slices and
// pointers with the version before, and the operator's client shares them
// with readers that only read (see vclient.List and checkShared).
type store struct {
	k          *kernel
	rev        int64
	objs       map[objKey]client.Object
	uids       uint64
	lastCommit time.Duration
	// latency is the time from a write's issue to its commit: where WAL
	// fsync delay acts.
	latency func(objKey) time.Duration
	// subs see every commit, in commit order, at its commit time.
	subs []func(*commit)
	// publishFn is publish, made once.
	publishFn func(*commit)
	// f is the run's faults; nil when it has none.
	f *faultModel
	// committed, when not nil, holds the committed state (what a List at
	// the apiserver returns), and committedRev its highest revision; kept only
	// when something relists.
	committed    map[objKey]client.Object
	committedRev int64
	// commitSeq is the seq of the last commit.
	commitSeq int64
	// log, when not nil, keeps the commits of the last
	// watchCacheRetention, from which the apiserver serves a watch that
	// starts at an older revision (kept only when something re-watches).
	log []logEntry
	// slab is where newCommit takes commits from.
	slab []commit
	// names interns key.nn() of every key written (nameOf).
	names map[objKey]string
	// conflicts holds the optimistic-concurrency Conflict of each key,
	// made once (conflict).
	conflicts map[objKey]error
}

// conflict is the Conflict a write to key with an old resourceVersion
// gets. Its text depends only on the key, and nothing changes an API error
// once made, so each key's is made once: status writes conflict often.
func (s *store) conflict(key objKey) error {
	if err, ok := s.conflicts[key]; ok {
		return err
	}
	if s.conflicts == nil {
		s.conflicts = map[objKey]error{}
	}
	err := apierrors.NewConflict(key.kind.gr(), key.name, errConflict)
	s.conflicts[key] = err
	return err
}

// nameOf is key.nn(), made once per key: every commit carries it.
func (s *store) nameOf(key objKey) string {
	nn, ok := s.names[key]
	if !ok {
		nn = key.nn()
		s.names[key] = nn
	}
	return nn
}

// logEntry is one commit in the store's log.
type logEntry struct {
	at time.Duration
	c  commit
}

// watchCacheRetention is how long kube-apiserver's watch cache keeps
// events (eventFreshDuration, 75 s): a watch from a revision older than
// what it still holds gets "410 Gone" and the client relists.
const watchCacheRetention = 75 * time.Second

// since returns the events committed after the one numbered seq, or ok
// false when the watch cache no longer holds them all ("410 Gone").
func (s *store) since(seq int64) (out []commit, ok bool) {
	if s.log == nil {
		return nil, false
	}
	if len(s.log) > 0 && s.log[0].c.seq > seq+1 {
		return nil, false
	}
	for _, e := range s.log {
		if e.c.seq > seq {
			out = append(out, e.c)
		}
	}
	return out, true
}

// commitSlab is how many commits store.newCommit allocates at once.
const commitSlab = 64

// newCommit returns a zero commit from the store's current slab: commits
// are allocated commitSlab at a time instead of one by one. A slab lives as
// long as any of its commits is referenced (an event, the log).
func (s *store) newCommit() *commit {
	if len(s.slab) == cap(s.slab) {
		s.slab = make([]commit, 0, commitSlab)
	}
	s.slab = s.slab[:len(s.slab)+1]
	return &s.slab[len(s.slab)-1]
}

func newStore(k *kernel, latency func(objKey) time.Duration) *store {
	s := &store{k: k, objs: map[objKey]client.Object{}, latency: latency, names: map[objKey]string{}}
	s.publishFn = s.publish
	return s
}

// write assigns the next revision to a write issued at issue and schedules
// its commit. Commits never overtake each other (etcd's WAL is a FIFO).
// obj nil deletes key. It returns when the answer is back at the
// apiserver: the commit time, unless faults delay the link to etcd.
func (s *store) write(issue time.Duration, key objKey, prev, obj client.Object) (done time.Duration) {
	s.rev++
	rv := strconv.FormatInt(s.rev, 10)
	c := s.newCommit()
	*c = commit{rev: s.rev, key: key, nn: s.nameOf(key), prev: prev}
	if obj == nil {
		final := shallowCopy(prev) // stored objects are immutable: share the rest
		final.SetResourceVersion(rv)
		c.obj, c.deleted = final, true
		delete(s.objs, key)
	} else {
		obj.SetResourceVersion(rv)
		c.obj = obj
		s.objs[key] = obj
	}
	var commitAt time.Duration
	if f := s.f; f != nil {
		arrive := f.cross(linkAPIEtcd, up, laneRequest, issue)
		commitAt = f.lockFree(max(f.commitTime(arrive, s.latency(key)), s.k.now))
		if f.reorders() {
			commitAt = f.commitOrder(key, commitAt)
		} else {
			commitAt = max(commitAt, s.lastCommit)
		}
		done = f.cross(linkAPIEtcd, down, laneRequest, commitAt)
	} else {
		commitAt = max(issue+s.latency(key), s.lastCommit, s.k.now)
		done = commitAt
	}
	s.lastCommit = commitAt
	s.k.atCommit(commitAt, s.publishFn, c)
	return done
}

// publish is a commit: the committed state changes and every subscriber
// sees the event.
//
// c is not changed after publish: the events scheduled with it share it.
func (s *store) publish(c *commit) {
	s.commitSeq++
	c.seq = s.commitSeq
	c.apiAt = s.k.now
	if f := s.f; f != nil {
		c.apiAt = f.cross(linkAPIEtcd, down, laneWatch+int(c.key.kind), c.apiAt)
	}
	if s.committed != nil {
		if c.deleted {
			delete(s.committed, c.key)
		} else {
			s.committed[c.key] = c.obj
		}
		s.committedRev = max(s.committedRev, c.rev)
	}
	if s.log != nil {
		drop := 0
		for drop < len(s.log) && s.log[drop].at < s.k.now-watchCacheRetention {
			drop++
		}
		s.log = append(s.log[drop:], logEntry{at: s.k.now, c: *c})
	}
	for _, f := range s.subs {
		f(c)
	}
}

// roundTrip is when the answer to a request that fails without writing
// comes back to the apiserver: one trip to etcd and back.
func (s *store) roundTrip(issue time.Duration, key objKey) time.Duration {
	if f := s.f; f != nil {
		return f.cross(linkAPIEtcd, down, laneRequest, f.cross(linkAPIEtcd, up, laneRequest, issue)+s.latency(key))
	}
	return issue + s.latency(key)
}

func (s *store) nextUID() types.UID {
	s.uids++
	return types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012x", s.uids))
}

// create stores a new object. It returns the stored object and the time the
// caller's request returns.
func (s *store) create(issue time.Duration, obj client.Object) (client.Object, time.Duration, error) {
	key := keyOf(obj)
	if key.name == "" {
		return nil, issue, apierrors.NewBadRequest("name is required (generateName is not modelled)")
	}
	if _, ok := s.objs[key]; ok {
		return nil, s.roundTrip(issue, key), apierrors.NewAlreadyExists(key.kind.gr(), key.name)
	}
	stored := obj.DeepCopyObject().(client.Object)
	stored.SetUID(s.nextUID())
	stored.SetCreationTimestamp(metav1.NewTime(Epoch.Add(issue)))
	stored.SetDeletionTimestamp(nil)
	stored.SetGeneration(1)
	stored.SetManagedFields(nil)
	switch o := stored.(type) {
	case *kvv1.KVCluster:
		o.Status = kvv1.KVClusterStatus{} // the status subresource ignores status on create
		o.TypeMeta = tmCluster
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending}
		o.TypeMeta = tmPod
	}
	return stored, s.write(issue, key, nil, stored), nil
}

// remove deletes an object. Member Pods are never bound to a node, so, as
// in kube-apiserver, they go at once, without a grace period; KVClusters
// have no finalizers.
func (s *store) remove(issue time.Duration, key objKey, pre *metav1.Preconditions) (time.Duration, error) {
	if err := s.checkRemove(key, pre); err != nil {
		return s.roundTrip(issue, key), err
	}
	return s.write(issue, key, s.objs[key], nil), nil
}

// checkRemove reports the error a deletion of key would fail with now.
func (s *store) checkRemove(key objKey, pre *metav1.Preconditions) error {
	cur, ok := s.objs[key]
	if !ok {
		return apierrors.NewNotFound(key.kind.gr(), key.name)
	}
	if pre != nil {
		if pre.UID != nil && *pre.UID != cur.GetUID() {
			return apierrors.NewConflict(key.kind.gr(), key.name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *pre.UID, cur.GetUID()))
		}
		if pre.ResourceVersion != nil && *pre.ResourceVersion != cur.GetResourceVersion() {
			return apierrors.NewConflict(key.kind.gr(), key.name,
				fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *pre.ResourceVersion, cur.GetResourceVersion()))
		}
	}
	return nil
}

var errConflict = fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again")

// patch applies a JSON merge patch to the main resource (status changes are
// ignored) or to the status subresource (everything but status is ignored).
// A resourceVersion in the patch that is not the current one is a Conflict,
// as in kube-apiserver. A patch that changes nothing writes nothing.
func (s *store) patch(issue time.Duration, key objKey, data []byte, status bool) (client.Object, time.Duration, error) {
	cur, ok := s.objs[key]
	if !ok {
		return nil, s.roundTrip(issue, key), apierrors.NewNotFound(key.kind.gr(), key.name)
	}
	next := shallowCopy(cur) // mergePatchInto copies what it changes
	if err := mergePatchInto(next, data); err != nil {
		return nil, s.roundTrip(issue, key), apierrors.NewBadRequest(err.Error())
	}
	if rv := next.GetResourceVersion(); rv != cur.GetResourceVersion() {
		return nil, s.roundTrip(issue, key), s.conflict(key)
	}
	return s.replace(issue, key, cur, next, status)
}

// patchCluster is patch for a workload merge patch to a KVCluster,
// applied without its JSON (kvPatch.MergeInto gives the same
// object); it carries no resourceVersion, so it never conflicts.
func (s *store) patchCluster(issue time.Duration, key objKey, p *kvPatch, status bool) (client.Object, time.Duration, error) {
	cur, ok := s.objs[key]
	if !ok {
		return nil, s.roundTrip(issue, key), apierrors.NewNotFound(key.kind.gr(), key.name)
	}
	kv, ok := cur.(*kvv1.KVCluster)
	if !ok {
		harnessBug("workload patch to a %T", cur)
	}
	next := *kv // stored objects are immutable: MergeInto copies what it changes
	p.MergeInto(&next)
	return s.replace(issue, key, cur, &next, status)
}

// patchFrom is patch for a merge patch from → obj with from's
// resourceVersion as precondition (see optimisticMergeFrom): a Conflict
// unless from is the stored version, else obj through the strategy.
func (s *store) patchFrom(issue time.Duration, key objKey, from, obj client.Object, status bool) (client.Object, time.Duration, error) {
	cur, ok := s.objs[key]
	if !ok {
		return nil, s.roundTrip(issue, key), apierrors.NewNotFound(key.kind.gr(), key.name)
	}
	if from.GetResourceVersion() != cur.GetResourceVersion() {
		return nil, s.roundTrip(issue, key), s.conflict(key)
	}
	next := ownCopy(obj, status)
	next.SetResourceVersion(cur.GetResourceVersion())
	return s.replace(issue, key, cur, next, status)
}

// update replaces the main resource (status changes are ignored) or the
// status subresource (everything but status is ignored) with obj, as a PUT
// does. A resourceVersion in obj that is not the current one is a
// Conflict; an empty one makes the update unconditional, as kube-apiserver
// allows for custom resources and Pods. An update that changes nothing
// writes nothing.
func (s *store) update(issue time.Duration, obj client.Object, status bool) (client.Object, time.Duration, error) {
	key := keyOf(obj)
	cur, ok := s.objs[key]
	if !ok {
		return nil, s.roundTrip(issue, key), apierrors.NewNotFound(key.kind.gr(), key.name)
	}
	if rv := obj.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
		return nil, s.roundTrip(issue, key), s.conflict(key)
	}
	next := ownCopy(obj, status)
	next.SetResourceVersion(cur.GetResourceVersion())
	return s.replace(issue, key, cur, next, status)
}

// replace stores next in place of cur after the registry's strategy: what
// a write to the main resource or the status subresource may change.
func (s *store) replace(issue time.Duration, key objKey, cur, next client.Object, status bool) (client.Object, time.Duration, error) {
	switch n := next.(type) {
	case *kvv1.KVCluster:
		o := cur.(*kvv1.KVCluster)
		if status {
			m := *o // stored objects are immutable: share all but the new status
			m.Status = n.Status
			next = &m
		} else {
			n.Status = o.Status
			n.Generation = o.Generation
			if o.Spec != n.Spec { // a comparable struct of plain values
				n.Generation++
			}
		}
	case *corev1.Pod:
		o := cur.(*corev1.Pod)
		if status {
			m := *o // stored objects are immutable: share all but the new status
			m.Status = n.Status
			next = &m
		} else {
			n.Status = o.Status
			n.Generation = o.Generation
		}
	}
	// Fields the caller cannot change.
	next.SetUID(cur.GetUID())
	next.SetName(cur.GetName())
	next.SetNamespace(cur.GetNamespace())
	next.SetCreationTimestamp(cur.GetCreationTimestamp())
	next.SetDeletionTimestamp(cur.GetDeletionTimestamp())
	*typeMeta(next) = *typeMeta(cur)
	next.SetManagedFields(nil)
	if unchanged(cur, next, status) {
		return cur, s.roundTrip(issue, key), nil
	}
	return next, s.write(issue, key, cur, next), nil
}

// unchanged reports whether a patch changed nothing, so that, as in
// kube-apiserver, it writes nothing. The strategy above already reset what
// the patch may not change; this compares the rest.
func unchanged(cur, next client.Object, status bool) bool {
	switch c := cur.(type) {
	case *kvv1.KVCluster:
		n := next.(*kvv1.KVCluster)
		if status {
			return clusterStatusEqual(&c.Status, &n.Status)
		}
		return c.Spec == n.Spec && metaUnchanged(&c.ObjectMeta, &n.ObjectMeta)
	case *corev1.Pod:
		n := next.(*corev1.Pod)
		if status {
			return equality.Semantic.DeepEqual(c.Status, n.Status)
		}
		return equality.Semantic.DeepEqual(c.Spec, n.Spec) && metaUnchanged(&c.ObjectMeta, &n.ObjectMeta)
	}
	return false
}

// clusterStatusEqual is equality.Semantic.DeepEqual of two KVCluster
// statuses without reflection (TestClusterStatusEqualIsSemantic): nil and
// empty conditions are equal, and times are equal in UTC.
func clusterStatusEqual(a, b *kvv1.KVClusterStatus) bool {
	return a.ReadyReplicas == b.ReadyReplicas && a.ObservedGeneration == b.ObservedGeneration &&
		slices.EqualFunc(a.Conditions, b.Conditions, func(x, y metav1.Condition) bool {
			return x.Type == y.Type && x.Status == y.Status && x.ObservedGeneration == y.ObservedGeneration &&
				x.LastTransitionTime.UTC() == y.LastTransitionTime.UTC() && x.Reason == y.Reason && x.Message == y.Message
		})
}

// metaUnchanged compares the metadata a patch may change; the strategy
// has already reset the rest (UID, name, namespace, timestamps,
// generation, managedFields), and resourceVersion is the store's.
func metaUnchanged(a, b *metav1.ObjectMeta) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		slices.Equal(a.Finalizers, b.Finalizers) && a.GenerateName == b.GenerateName &&
		equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences) &&
		(a.DeletionGracePeriodSeconds == nil) == (b.DeletionGracePeriodSeconds == nil)
}

// updatePodStatus is the simulated kubelet's status write: it replaces the
// status of the Pod with the given UID.
func (s *store) updatePodStatus(issue time.Duration, key objKey, uid types.UID, status func(*corev1.Pod) corev1.PodStatus) (time.Duration, error) {
	cur, ok := s.objs[key]
	if !ok || cur.GetUID() != uid {
		return s.roundTrip(issue, key), apierrors.NewNotFound(grPods, key.name)
	}
	next := *cur.(*corev1.Pod) // stored objects are immutable: share all but the new status
	next.Status = status(&next)
	return s.write(issue, key, cur, &next), nil
}

// shallowCopy is a new object with obj's fields: maps, slices and
// pointers are shared, which is safe between stored objects, since they
// are never changed in place.
func shallowCopy(obj client.Object) client.Object {
	switch o := obj.(type) {
	case *kvv1.KVCluster:
		c := *o
		return &c
	case *corev1.Pod:
		c := *o
		return &c
	}
	harnessBug("object type %T is not modelled", obj)
	return nil
}

// ownCopy is the store's own copy of a caller's object for a write: a
// deep copy, or for the status subresource, where replace takes all but
// status from the stored object, a deep copy of its status only.
func ownCopy(obj client.Object, status bool) client.Object {
	if status {
		switch o := obj.(type) {
		case *kvv1.KVCluster:
			c := &kvv1.KVCluster{}
			o.Status.DeepCopyInto(&c.Status)
			return c
		case *corev1.Pod:
			c := &corev1.Pod{}
			o.Status.DeepCopyInto(&c.Status)
			return c
		}
	}
	return obj.DeepCopyObject().(client.Object)
}

func newObject(k objKind) client.Object {
	if k == kindPod {
		return &corev1.Pod{}
	}
	return &kvv1.KVCluster{}
}

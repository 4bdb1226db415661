package virtual

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftlab/driftlab/operator"
	kvv1 "github.com/driftlab/driftlab/operator/api/v1alpha1"
)

var (
	schemeOnce sync.Once
	scheme     *runtime.Scheme
)

// sharedScheme is operator.Scheme(), built once: it is only read.
func sharedScheme() *runtime.Scheme {
	schemeOnce.Do(func() { scheme = operator.Scheme() })
	return scheme
}

// actor is one client of the modelled API server (the operator, the
// workload). Its clock is the virtual time its next request is issued at:
// requests are synchronous, so each one advances the clock to the time its
// answer arrives.
type actor struct {
	name  string
	clock time.Duration
	// charge is time to add before the actor's next request (the
	// reconcile's modelled compute time).
	charge time.Duration
	// gate, when set, returns the first instant at or after t when the
	// actor's process can run (gc-assist-pressure pauses).
	gate func(t time.Duration) time.Duration
}

func (a *actor) issue() time.Duration {
	a.clock += a.charge
	a.charge = 0
	if a.gate != nil {
		a.clock = a.gate(a.clock)
	}
	return a.clock
}

// vclient is a controller-runtime client.Client backed by the model: reads
// come from the operator's informer caches (so they can be stale), writes go
// to the store. Methods the reference operator does not use are not
// modelled and panic with HarnessBugPrefix if called.
type vclient struct {
	client.Client // nil: never reached, every method is overridden below

	w     *world
	actor *actor
	// cached reads come from these informers; nil means this actor never
	// reads (the workload).
	clusters, pods *informer

	// batchDeletes makes consecutive Deletes commit in key order (see
	// Delete); pending holds them until the next other request or flush.
	batchDeletes bool
	pending      []pendingDelete

	// opLink: requests cross the operator↔apiserver link (faults on it).
	opLink bool
	// stale, when set, answers reads from an older view (stale-read).
	stale func(inf *informer) (lag time.Duration, f *vfault)
	// crash-restart: the process crashes when the crashAt-th call of the
	// current reconcile is made (crash panics).
	calls, crashAt int
	crash          func(call int)

	// scratch is List's buffer of matching objects.
	scratch []client.Object
	// reuseItems (the operator's client): List lends items, the buffer
	// of Pods for a list's items, once per reconcile (see podItems).
	reuseItems, itemsLent bool
	items                 []corev1.Pod
	// shared holds what was handed out without a deep copy since the
	// last verifyShared (checkShared only).
	shared []sharedObject
}

// crashPoint counts a call of the reconcile and crashes the process when
// it is the one crash-restart chose.
func (c *vclient) crashPoint() {
	if c.crashAt == 0 {
		return
	}
	c.calls++
	if c.calls >= c.crashAt {
		c.crash(c.calls)
	}
}

// send is when a request leaves the actor and reaches the apiserver.
func (c *vclient) send() time.Duration {
	t := c.actor.issue()
	if f := c.w.store.f; f != nil && c.opLink {
		t = f.cross(linkOpAPI, up, laneRequest, t)
	}
	return t
}

// sendReq is send for a request that can be lost with the operator's
// connection: when the health check closes the connection before the
// request reaches the apiserver (or has decided to close it when the
// request is made), the request never arrives: ok is false, and the
// actor's clock is when its caller gets the error.
func (c *vclient) sendReq() (t time.Duration, ok bool) {
	f := c.w.store.f
	if f == nil || !c.opLink || f.conn == nil {
		return c.send(), true
	}
	t = c.actor.issue()
	if h := f.conn; h.open && h.closing && t >= h.closeAt {
		return t, false // made while its connection is being torn down
	}
	t = f.cross(linkOpAPI, up, laneRequest, t)
	if at, lost := f.conn.lostBy(t); lost {
		c.actor.clock = at
		return t, false
	}
	return t, true
}

// receive sets the actor's clock to when the answer, back at the
// apiserver at done, reaches it. It returns errConnLost when the health
// check closes the connection before the answer arrives (the clock is
// then the close).
func (c *vclient) receive(done time.Duration) error {
	if f := c.w.store.f; f != nil && c.opLink {
		done = f.cross(linkOpAPI, down, laneRequest, done)
		if h := f.conn; h != nil && h.closing && h.closeAt < done {
			c.actor.clock = max(h.closeAt, c.actor.clock)
			return errConnLost
		}
	}
	c.actor.clock = done
	return nil
}

type pendingDelete struct {
	key objKey
	pre *metav1.Preconditions
}

var _ client.Client = (*vclient)(nil)

func notModelled(method string) {
	harnessBug("client.%s is not modelled by the virtual backend", method)
}

// Get implements client.Reader from the informer cache.
func (c *vclient) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	c.crashPoint()
	c.flush()
	now := c.actor.issue()
	inf := c.informerFor(kindOf(obj))
	var src client.Object
	if lag, f := c.staleView(inf); f != nil {
		src = inf.getAt(key.String(), now-lag)
		f.n++
		if src != inf.objs[key.String()] {
			f.m++
		}
	} else {
		src = inf.objs[key.String()]
	}
	if src == nil {
		return apierrors.NewNotFound(kindOf(obj).gr(), key.Name)
	}
	c.getInto(obj, src)
	return nil
}

// List implements client.Reader from the informer cache, with namespace and
// label selector; items are ordered by name.
//
// Pod items are shallow copies of the cached objects: their maps, slices
// and pointers are shared with the cache, where controller-runtime's cache
// reader would deep-copy them. The stored objects are immutable and the
// reference operator only reads what it lists (it keeps, records and
// deletes members, never changes them), so this reads the same; the
// tests check it (checkShared) on every scenario. KVCluster lists (which
// the operator never makes) are deep copies.
func (c *vclient) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.crashPoint()
	c.flush()
	now := c.actor.issue()
	ns, want, simple := simpleListOptions(opts)
	var sel labels.Selector
	fieldSel := false
	if !simple {
		lo := (&client.ListOptions{}).ApplyOptions(opts)
		ns, sel = lo.Namespace, lo.LabelSelector
		fieldSel = lo.FieldSelector != nil && !lo.FieldSelector.Empty()
	}
	var k objKind
	switch list.(type) {
	case *corev1.PodList:
		k = kindPod
	case *kvv1.KVClusterList:
		k = kindCluster
	default:
		harnessBug("list type %T is not modelled", list)
	}
	inf := c.informerFor(k)
	objs := inf.objs
	stale := false
	if lag, f := c.staleView(inf); f != nil {
		stale = true
		objs = inf.viewAt(now - lag)
		f.n++
		if len(objs) != len(inf.objs) {
			f.m++
		} else {
			for nn, o := range objs {
				if inf.objs[nn] != o {
					f.m++
					break
				}
			}
		}
	}
	if cl, ok := want[kvv1.LabelCluster]; ok && simple && len(want) == 1 && ns != "" && !stale {
		// The member listing: one list of the index, already in order.
		members := inf.members[memberKey{ns, cl}]
		if checkShared {
			verifyIndex(inf, ns, cl, members)
		}
		c.fill(list, inf, members)
		return nil
	}
	var buf [4]label
	wantLabels := buf[:0]
	for k, v := range want {
		wantLabels = append(wantLabels, label{k, v})
	}
	match := c.scratch[:0]
	for _, o := range objs {
		if ns != "" && o.GetNamespace() != ns {
			continue
		}
		if simple {
			if !hasLabels(o.GetLabels(), wantLabels) {
				continue
			}
		} else if sel != nil && !sel.Matches(labels.Set(o.GetLabels())) {
			continue
		}
		if fieldSel {
			notModelled("List with a field selector")
		}
		match = append(match, o)
	}
	// Keys are unique: the order is total.
	slices.SortFunc(match, func(a, b client.Object) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	c.fill(list, inf, match)
	clear(match)
	c.scratch = match[:0]
	return nil
}

// verifyIndex checks a list of the informer's member index against a scan
// of its cache (checkShared only).
func verifyIndex(inf *informer, ns, cluster string, got []client.Object) {
	var want []client.Object
	for _, o := range inf.objs {
		if v, ok := o.GetLabels()[kvv1.LabelCluster]; ok && v == cluster && o.GetNamespace() == ns {
			want = append(want, o)
		}
	}
	slices.SortFunc(want, func(a, b client.Object) int { return cmp.Compare(a.GetName(), b.GetName()) })
	if !slices.Equal(got, want) {
		harnessBug("member index of %s/%s holds %d objects, the cache %d (or other versions)", ns, cluster, len(got), len(want))
	}
}

// fill sets a list's items to the objects match, in order, and its
// resourceVersion to the informer's.
func (c *vclient) fill(list client.ObjectList, inf *informer, match []client.Object) {
	switch l := list.(type) {
	case *corev1.PodList:
		l.Items = c.podItems(len(match))
		for i, o := range match {
			l.Items[i] = *o.(*corev1.Pod)
			c.noteShared(o)
		}
		l.ResourceVersion = strconv.FormatInt(inf.rv, 10)
	case *kvv1.KVClusterList:
		l.Items = make([]kvv1.KVCluster, len(match))
		for i, o := range match {
			o.(*kvv1.KVCluster).DeepCopyInto(&l.Items[i])
		}
		l.ResourceVersion = strconv.FormatInt(inf.rv, 10)
	}
}

// podItems returns a slice of n Pods for a list's items: the client's
// buffer when no List has handed it out since the last endReconcile, else
// a new slice. Its capacity is n, so an append by the caller reallocates.
// A reconcile's objects are dead when it returns (the reference operator
// keeps only values such as names and revisions), so the next reconcile
// can reuse the buffer; with checkShared, endReconcile zeroes it, so a
// reader that kept items would see its run change.
func (c *vclient) podItems(n int) []corev1.Pod {
	if c.itemsLent || !c.reuseItems {
		return make([]corev1.Pod, n)
	}
	if cap(c.items) < n {
		c.items = make([]corev1.Pod, max(n, 8))
	}
	c.itemsLent = true
	return c.items[:n:n]
}

// endReconcile is called when a reconcile has returned: what it was lent
// can be reused.
func (c *vclient) endReconcile() {
	if checkShared {
		clear(c.items)
	}
	c.itemsLent = false
}

// simpleListOptions reads the list options the reference operator uses
// (client.InNamespace, at most one client.MatchingLabels) without building
// a labels.Selector; ok is false for any other option, which then goes
// through client.ListOptions.
func simpleListOptions(opts []client.ListOption) (ns string, want map[string]string, ok bool) {
	seen := false
	for _, o := range opts {
		switch v := o.(type) {
		case client.InNamespace:
			ns = string(v)
		case client.MatchingLabels:
			if seen {
				return "", nil, false
			}
			want, seen = v, true
		default:
			return "", nil, false
		}
	}
	return ns, want, true
}

// label is a label's key and value.
type label struct{ k, v string }

// hasLabels reports whether have holds every label of want with its
// value: labels.SelectorFromValidatedSet(want).Matches(have).
func hasLabels(have map[string]string, want []label) bool {
	for _, l := range want {
		if got, ok := have[l.k]; !ok || got != l.v {
			return false
		}
	}
	return true
}

// checkShared, set by tests, makes the operator's client snapshot every
// object it hands out without a deep copy, and verifyShared checks after
// each reconcile that none of them changed: the proof that sharing reads
// the same as copying. It also checks every member listing served from
// the informer's index against a scan of its cache (verifyIndex).
var checkShared bool

// sharedObject is a stored object handed out without a deep copy, and a
// deep copy of it taken then.
type sharedObject struct {
	stored, snapshot client.Object
}

// verifyShared reports the first object handed out without a deep copy
// that changed since (checkShared), and forgets them.
func (c *vclient) verifyShared() error {
	defer func() { c.shared = c.shared[:0] }()
	for _, s := range c.shared {
		if !reflect.DeepEqual(s.stored, s.snapshot) {
			return fmt.Errorf("%T %s/%s was changed by its reader after the client shared it", s.stored, s.stored.GetNamespace(), s.stored.GetName())
		}
	}
	return nil
}

// staleView returns the lag of the operator's reads while stale-read is
// on, and the fault; f is nil otherwise.
func (c *vclient) staleView(inf *informer) (lag time.Duration, f *vfault) {
	if c.stale == nil || inf.hist == nil {
		return 0, nil
	}
	return c.stale(inf)
}

func (c *vclient) informerFor(k objKind) *informer {
	var inf *informer
	if k == kindPod {
		inf = c.pods
	} else {
		inf = c.clusters
	}
	if inf == nil {
		harnessBug("actor %s reads %s but has no informer for it", c.actor.name, k.gr())
	}
	return inf
}

// Create implements client.Writer.
func (c *vclient) Create(_ context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.crashPoint()
	c.flush()
	co := (&client.CreateOptions{}).ApplyOptions(opts)
	if len(co.DryRun) > 0 {
		notModelled("Create with dry run")
	}
	t, ok := c.sendReq()
	if !ok {
		return errConnLost
	}
	stored, done, err := c.w.store.create(t, obj)
	if lerr := c.receive(done); lerr != nil {
		return lerr
	}
	if err != nil {
		return err
	}
	c.share(obj, stored)
	return nil
}

// Delete implements client.Writer, with preconditions.
//
// With batchDeletes (the operator's client), a run of consecutive Deletes is
// answered at once, from the store as it is then, but committed in key
// order when the run ends (at the next other request or the end of the
// reconcile). Deletions of distinct objects commute and the caller sees
// only their errors, so this changes nothing but the order of their
// revisions, and it makes that order independent of the caller's map
// iteration order (the reference operator deletes surplus members while
// ranging over a map).
func (c *vclient) Delete(_ context.Context, obj client.Object, opts ...client.DeleteOption) error {
	do := (&client.DeleteOptions{}).ApplyOptions(opts)
	if len(do.DryRun) > 0 {
		notModelled("Delete with dry run")
	}
	key := keyOf(obj)
	c.crashPoint()
	if !c.batchDeletes {
		t, ok := c.sendReq()
		if !ok {
			return errConnLost
		}
		done, err := c.w.store.remove(t, key, do.Preconditions)
		if lerr := c.receive(done); lerr != nil {
			return lerr
		}
		return err
	}
	err := c.w.store.checkRemove(key, do.Preconditions)
	for _, p := range c.pending {
		if p.key == key {
			err = apierrors.NewNotFound(key.kind.gr(), key.name)
		}
	}
	if err != nil {
		t, ok := c.sendReq()
		if !ok {
			return errConnLost
		}
		if lerr := c.receive(c.w.store.roundTrip(t, key)); lerr != nil {
			return lerr
		}
		return err
	}
	var pre *metav1.Preconditions
	if do.Preconditions != nil {
		pre = do.Preconditions.DeepCopy()
	}
	c.pending = append(c.pending, pendingDelete{key: key, pre: pre})
	return nil
}

// flush commits the pending Deletes in key order.
func (c *vclient) flush() {
	if len(c.pending) == 0 {
		return
	}
	sort.Slice(c.pending, func(i, j int) bool {
		a, b := c.pending[i].key, c.pending[j].key
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.ns != b.ns {
			return a.ns < b.ns
		}
		return a.name < b.name
	})
	for _, p := range c.pending {
		t, ok := c.sendReq()
		if !ok {
			// Lost with its connection: it never reaches kube-apiserver.
			// The caller was answered already (the batch is a model
			// shortcut); it finds the surplus member again after its
			// informers relist. Committing it at its far arrival would
			// hold every later commit behind it (commits are a FIFO).
			continue
		}
		done, err := c.w.store.remove(t, p.key, p.pre)
		if err != nil {
			harnessBug("batched delete of %s failed at commit after it was accepted: %v", p.key.nn(), err)
		}
		_ = c.receive(done)
	}
	c.pending = c.pending[:0]
}

// Patch implements client.Writer for JSON merge patches (client.MergeFrom,
// with or without optimistic lock, and raw merge patches).
func (c *vclient) Patch(_ context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	return c.patch(obj, patch, false, dryRun(opts, func() bool { return len((&client.PatchOptions{}).ApplyOptions(opts).DryRun) > 0 }))
}

// dryRun reports whether options ask for a dry run: false at once when
// they are only field owners (what the reference operator passes), else
// what the options, applied, say.
func dryRun[O any](opts []O, applied func() bool) bool {
	for _, o := range opts {
		if _, ok := any(o).(client.FieldOwner); !ok {
			return applied()
		}
	}
	return false
}

func (c *vclient) patch(obj client.Object, patch client.Patch, status, dryRun bool) error {
	if dryRun {
		notModelled("Patch with dry run")
	}
	c.crashPoint()
	c.flush()
	if patch.Type() != types.MergePatchType {
		notModelled("Patch of type " + string(patch.Type()))
	}
	// The workload's own patches and the operator's optimistic-lock
	// status patches skip the JSON (same objects: TestFastMergePatchSameAsJSON).
	key := keyOf(obj)
	var (
		stored client.Object
		done   time.Duration
		err    error
	)
	var data []byte
	wp, isWP := patch.(*kvPatch)
	var from client.Object
	isFrom := false
	if !isWP {
		from, isFrom = optimisticMergeFrom(patch)
	}
	if !(isWP && fastMergePatch) && !(isFrom && fastMergePatch) {
		var derr error
		if data, derr = patch.Data(obj); derr != nil {
			return derr
		}
	}
	t, ok := c.sendReq()
	if !ok {
		return errConnLost
	}
	switch {
	case isWP && fastMergePatch:
		stored, done, err = c.w.store.patchCluster(t, key, wp, status)
	case isFrom && fastMergePatch:
		stored, done, err = c.w.store.patchFrom(t, key, from, obj, status)
	default:
		stored, done, err = c.w.store.patch(t, key, data, status)
	}
	if lerr := c.receive(done); lerr != nil {
		return lerr
	}
	if err != nil {
		return err
	}
	c.share(obj, stored)
	return nil
}

var mergeFromType = reflect.TypeOf(client.MergeFrom(nil))

// fastMergePatch switches the shortcut of optimisticMergeFrom on; tests
// switch it off to check that both paths give the same runs.
var fastMergePatch = true

// optimisticMergeFrom returns the original object of a patch made by
// client.MergeFromWithOptions(from, client.MergeFromWithOptimisticLock{}),
// the reference operator's status write. Such a patch is the difference
// from → obj plus from's resourceVersion as a precondition: when that
// precondition holds, the stored object is from, and the patch applied to
// it gives obj; when it does not, the patch is a Conflict. So the store
// can take obj itself (store.patchFrom) instead of the JSON patch, which
// costs two deep copies, two JSON encodings, a diff and a decode. Any
// other patch returns ok false and takes the JSON path.
func optimisticMergeFrom(p client.Patch) (from client.Object, ok bool) {
	v := reflect.ValueOf(p)
	if v.Type() != mergeFromType {
		return nil, false
	}
	fs := mergeFromFields()
	if !fs.ok {
		return nil, false
	}
	e := v.Elem()
	if !e.FieldByIndex(fs.lock).Bool() {
		return nil, false
	}
	from = *(*client.Object)(unsafe.Pointer(e.FieldByIndex(fs.from).UnsafeAddr()))
	return from, from != nil && from.GetResourceVersion() != ""
}

// mergeFromPatchFields are the index paths, in controller-runtime's
// mergeFromPatch, of its original object (from) and of
// opts.OptimisticLock; ok is false when they are not there as expected
// (another controller-runtime), and every patch takes the JSON path.
type mergeFromPatchFields struct {
	from, lock []int
	ok         bool
}

// mergeFromFields looks the fields up once: by name, they cost a search
// on every status write.
var mergeFromFields = sync.OnceValue(func() mergeFromPatchFields {
	t := mergeFromType.Elem()
	opts, ok1 := t.FieldByName("opts")
	from, ok2 := t.FieldByName("from")
	if !ok1 || !ok2 || from.Type != reflect.TypeFor[client.Object]() || opts.Type.Kind() != reflect.Struct {
		return mergeFromPatchFields{}
	}
	lock, ok := opts.Type.FieldByName("OptimisticLock")
	if !ok || lock.Type.Kind() != reflect.Bool {
		return mergeFromPatchFields{}
	}
	return mergeFromPatchFields{from: from.Index, lock: append(slices.Clone(opts.Index), lock.Index...), ok: true}
})

// Status implements client.StatusClient.
func (c *vclient) Status() client.SubResourceWriter { return statusWriter{c} }

// Scheme implements client.Client: operator.Scheme().
func (c *vclient) Scheme() *runtime.Scheme { return sharedScheme() }

// Apply is not modelled.
func (c *vclient) Apply(context.Context, runtime.ApplyConfiguration, ...client.ApplyOption) error {
	notModelled("Apply")
	return nil
}

// Update implements client.Writer: a PUT of the main resource, with the
// object's resourceVersion as precondition when it is set.
func (c *vclient) Update(_ context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return c.update(obj, false, len((&client.UpdateOptions{}).ApplyOptions(opts).DryRun) > 0)
}

func (c *vclient) update(obj client.Object, status, dryRun bool) error {
	if dryRun {
		notModelled("Update with dry run")
	}
	c.crashPoint()
	c.flush()
	t, ok := c.sendReq()
	if !ok {
		return errConnLost
	}
	stored, done, err := c.w.store.update(t, obj, status)
	if lerr := c.receive(done); lerr != nil {
		return lerr
	}
	if err != nil {
		return err
	}
	c.share(obj, stored)
	return nil
}

// DeleteAllOf is not modelled.
func (c *vclient) DeleteAllOf(context.Context, client.Object, ...client.DeleteAllOfOption) error {
	notModelled("DeleteAllOf")
	return nil
}

// SubResource is not modelled.
func (c *vclient) SubResource(string) client.SubResourceClient {
	notModelled("SubResource")
	return nil
}

// RESTMapper is not modelled.
func (c *vclient) RESTMapper() meta.RESTMapper {
	notModelled("RESTMapper")
	return nil
}

// GroupVersionKindFor is not modelled.
func (c *vclient) GroupVersionKindFor(runtime.Object) (schema.GroupVersionKind, error) {
	notModelled("GroupVersionKindFor")
	return schema.GroupVersionKind{}, nil
}

// IsObjectNamespaced is not modelled.
func (c *vclient) IsObjectNamespaced(runtime.Object) (bool, error) {
	notModelled("IsObjectNamespaced")
	return false, nil
}

// statusWriter is the status subresource of vclient.
type statusWriter struct{ c *vclient }

var _ client.SubResourceWriter = statusWriter{}

// Patch patches the status subresource: only status changes are kept.
func (s statusWriter) Patch(_ context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.c.patch(obj, patch, true, dryRun(opts, func() bool { return len((&client.SubResourcePatchOptions{}).ApplyOptions(opts).DryRun) > 0 }))
}

// Create is not modelled.
func (s statusWriter) Create(context.Context, client.Object, client.Object, ...client.SubResourceCreateOption) error {
	notModelled("Status().Create")
	return nil
}

// Update replaces the status subresource: only status changes are kept;
// the object's resourceVersion is a precondition when it is set.
func (s statusWriter) Update(_ context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	uo := (&client.SubResourceUpdateOptions{}).ApplyOptions(opts)
	return s.c.update(obj, true, len(uo.DryRun) > 0)
}

// Apply is not modelled.
func (s statusWriter) Apply(context.Context, runtime.ApplyConfiguration, ...client.SubResourceApplyOption) error {
	notModelled("Status().Apply")
	return nil
}

// assign deep-copies src into dst (same type) and sets dst's kind, as
// controller-runtime's cache reader does.
func assign(dst, src client.Object) {
	switch d := dst.(type) {
	case *kvv1.KVCluster:
		src.(*kvv1.KVCluster).DeepCopyInto(d)
		d.TypeMeta = tmCluster
	case *corev1.Pod:
		src.(*corev1.Pod).DeepCopyInto(d)
		d.TypeMeta = tmPod
	default:
		harnessBug("object type %T is not modelled", dst)
	}
}

// share sets dst (same type) to a shallow copy of the stored object src
// and sets dst's kind: what assign does, but maps, slices and pointers
// are shared with the store. It is for the answers of writes: the object
// a write returns into is only read afterwards (the operator reads its
// resourceVersion, the workload drops it); checkShared verifies it.
func (c *vclient) share(dst, src client.Object) {
	switch d := dst.(type) {
	case *kvv1.KVCluster:
		*d = *src.(*kvv1.KVCluster)
		d.TypeMeta = tmCluster
	case *corev1.Pod:
		*d = *src.(*corev1.Pod)
		d.TypeMeta = tmPod
	default:
		harnessBug("object type %T is not modelled", dst)
	}
	c.noteShared(src)
}

// getInto is Get's copy of a cached object into dst. A KVCluster is a
// shallow copy: its maps and its conditions are shared with the cache,
// which the operator only reads (it gives its status conditions a slice
// of their own before it changes them; checkShared verifies it). Other
// kinds are deep copies.
func (c *vclient) getInto(dst, src client.Object) {
	if d, ok := dst.(*kvv1.KVCluster); ok {
		*d = *src.(*kvv1.KVCluster)
		d.TypeMeta = tmCluster
		c.noteShared(src)
		return
	}
	assign(dst, src)
}

// noteShared remembers a stored object handed out without a deep copy
// (checkShared only).
func (c *vclient) noteShared(src client.Object) {
	if checkShared {
		c.shared = append(c.shared, sharedObject{stored: src, snapshot: src.DeepCopyObject().(client.Object)})
	}
}

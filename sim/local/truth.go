package local

import (
	"context"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/driftlab/driftlab/sim/harness"
	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/subject"
)

// RegistryPrefix is the etcd key prefix kube-apiserver stores a resource
// under: /registry/<group>/<resource>/ for custom resources, and
// /registry/<resource>/ for built-in ones — but for the few whose storage
// kept an older name.
func RegistryPrefix(gr schema.GroupResource, custom bool) string {
	if custom {
		return "/registry/" + gr.Group + "/" + gr.Resource + "/"
	}
	if p, ok := builtinPrefixes[gr]; ok {
		return "/registry/" + p + "/"
	}
	return "/registry/" + gr.Resource + "/"
}

// builtinPrefixes are built-in resources stored under another name than
// their resource's (kube-apiserver's storage factory).
var builtinPrefixes = map[schema.GroupResource]string{
	{Resource: "nodes"}:     "minions",
	{Resource: "services"}:  "services/specs",
	{Resource: "endpoints"}: "services/endpoints",
}

// truthWatcher watches the embedded etcd in-process and hands every
// committed change of a watched kind to the truth tracker, stamped when
// the commit is seen. It decodes objects as kube-apiserver stored them:
// protobuf for built-in kinds, JSON for custom resources (as the system's
// Go types when its scheme has them, else unstructured).
type truthWatcher struct {
	// namespace, when set, keeps only namespaced objects of that
	// namespace: the runs sharing a plane each see their own.
	namespace string
	commit    harness.CommitFunc
	decoder   runtime.Decoder
	prefixes  []watchedPrefix
	record    func(history.Record)
}

type watchedPrefix struct {
	prefix     string
	index      int // in Subject.Watched
	namespaced bool
}

func newTruthWatcher(s *subject.Subject, scheme *runtime.Scheme, custom map[schema.GroupResource]bool, commit harness.CommitFunc, record func(history.Record)) *truthWatcher {
	w := &truthWatcher{commit: commit, record: record, decoder: serializer.NewCodecFactory(scheme).UniversalDeserializer()}
	for i, wk := range s.Watched() {
		if !wk.Served {
			continue
		}
		gr := wk.GVR.GroupResource()
		w.prefixes = append(w.prefixes, watchedPrefix{prefix: RegistryPrefix(gr, custom[gr]), index: i, namespaced: wk.Namespaced})
	}
	// Longest first, so that a prefix never shadows a longer one.
	sort.Slice(w.prefixes, func(i, j int) bool { return len(w.prefixes[i].prefix) > len(w.prefixes[j].prefix) })
	return w
}

// run watches from revision rev+1 until ctx is done. ready gets nil once
// the watch is established.
func (w *truthWatcher) run(ctx context.Context, c *clientv3.Client, rev int64, ready chan<- error) error {
	wctx := clientv3.WithRequireLeader(ctx)
	wch := c.Watch(wctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	first := true
	for resp := range wch {
		if first {
			ready <- nil
			first = false
		}
		if err := resp.Err(); err != nil {
			return fmt.Errorf("truth watch: %w", err)
		}
		for _, ev := range resp.Events {
			k := string(ev.Kv.Key)
			p, ok := w.match(k)
			if !ok {
				continue
			}
			key := strings.TrimPrefix(k, p.prefix)
			if w.namespace != "" && p.namespaced && !strings.HasPrefix(key, w.namespace+"/") {
				continue
			}
			var obj any
			if ev.Type != clientv3.EventTypeDelete {
				if obj = w.decode(k, ev.Kv.Value); obj == nil {
					continue
				}
			}
			w.commit(p.index, key, obj, ev.Kv.ModRevision)
		}
	}
	if first {
		ready <- nil
	}
	return ctx.Err()
}

func (w *truthWatcher) match(key string) (watchedPrefix, bool) {
	for _, p := range w.prefixes {
		if strings.HasPrefix(key, p.prefix) {
			return p, true
		}
	}
	return watchedPrefix{}, false
}

// decode decodes a stored object; on failure it records a decode-error
// and returns nil.
func (w *truthWatcher) decode(k string, value []byte) any {
	obj, _, err := w.decoder.Decode(value, nil, nil)
	if err == nil {
		return obj
	}
	// A custom resource the scheme does not know: JSON, read as it is.
	u := &unstructured.Unstructured{}
	if _, _, uerr := unstructured.UnstructuredJSONScheme.Decode(value, nil, u); uerr == nil {
		return u
	}
	w.record(history.Record{Source: history.SourceHarness, Kind: "decode-error", Detail: fmt.Sprintf("%s: %v", k, err)})
	return nil
}

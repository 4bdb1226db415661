package watchtrace

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/driftlab/driftlab/sim/history"
)

type sink struct {
	mu   sync.Mutex
	recs []history.Record
}

func (s *sink) Emit(r history.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
}

func (s *sink) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.recs {
		k := r.Kind
		if r.Op != "" {
			k += ":" + r.Op
		}
		out = append(out, k+"("+r.Resource+")")
	}
	return out
}

func (s *sink) last(kind string) history.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.recs) - 1; i >= 0; i-- {
		if s.recs[i].Kind == kind {
			return s.recs[i]
		}
	}
	return history.Record{}
}

func jsonEvent(typ, obj string) string { return fmt.Sprintf(`{"type":%q,"object":%s}`+"\n", typ, obj) }

// protoFrame is one length-delimited protobuf watch event, as
// kube-apiserver streams them.
func protoFrame(t *testing.T, typ string, obj runtime.Object) []byte {
	t.Helper()
	var raw []byte
	if st, ok := obj.(*metav1.Status); ok {
		b, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		u := runtime.Unknown{Raw: b, ContentType: "application/vnd.kubernetes.protobuf"}
		ub, err := u.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		raw = append([]byte("k8s\x00"), ub...)
	} else {
		raw = []byte("k8s\x00pod-bytes")
	}
	we := metav1.WatchEvent{Type: typ, Object: runtime.RawExtension{Raw: raw}}
	b, err := we.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// TestWatchEnds serves watches that end each way and checks the cause,
// the event count and the relists recorded.
func TestWatchEnds(t *testing.T) {
	var refuseFirst atomic.Bool
	gone := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 5 (90)","reason":"Expired","code":410}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fl := w.(http.Flusher)
		if r.URL.Path == "/api/v1/configmaps" && refuseFirst.CompareAndSwap(false, true) {
			http.Error(w, "starting", http.StatusTooManyRequests)
			return
		}
		if q.Get("watch") != "true" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"kind":"PodList","items":[]}`)
			return
		}
		switch q.Get("resourceVersion") {
		case "early": // the apiserver closes early: terminated
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, jsonEvent("ADDED", `{"metadata":{"name":"a {\"}"}}`))
			io.WriteString(w, jsonEvent("BOOKMARK", `{"metadata":{"resourceVersion":"9"}}`))
			io.WriteString(w, jsonEvent("MODIFIED", `{"metadata":{"name":"b"}}`))
		case "gone":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, jsonEvent("ERROR", gone))
		case "proto-gone":
			w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf;stream=watch")
			w.Write(protoFrame(t, "ADDED", nil))
			fl.Flush()
			f := protoFrame(t, "ERROR", &metav1.Status{Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"})
			w.Write(f[:3]) // a frame split across reads
			fl.Flush()
			w.Write(f[3:])
		case "cut": // the connection dies mid-stream
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, jsonEvent("ADDED", `{}`))
			fl.Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case "hold": // until the client stops
			w.Header().Set("Content-Type", "application/json")
			fl.Flush()
			<-r.Context().Done()
		case "refused":
			http.Error(w, "no", http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	s := &sink{}
	c := &http.Client{Transport: New(s).Wrap(http.DefaultTransport)}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	drain := func(path string) {
		t.Helper()
		resp := get(path)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	drain("/api/v1/pods?labelSelector=app")   // the first list fills the cache: not a relist
	drain("/api/v1/pods?labelSelector=other") // another reflector's first list
	drain("/api/v1/namespaces/default/pods/p1")
	drain("/api/v1/pods?labelSelector=app&limit=500")  // a relist
	drain("/api/v1/pods?labelSelector=app&continue=x") // its next page
	drain("/api/v1/configmaps")                        // refused (429): not a list that filled the cache
	drain("/api/v1/configmaps")                        // the first list
	drain("/api/v1/configmaps")                        // a relist
	drain("/apis/kv.driftlab.io/v1alpha1/kvclusters?watch=true&resourceVersion=early&timeoutSeconds=300")
	if r := s.last(history.KindWatchEnd); r.Op != CauseTerminated || r.Metrics["events"] != 2 || r.Metrics["bookmarks"] != 1 || r.Resource != "kvclusters.kv.driftlab.io" {
		t.Errorf("early close: %+v", r)
	}
	drain("/api/v1/pods?watch=true&resourceVersion=gone")
	if r := s.last(history.KindWatchEnd); r.Op != CauseGone || !strings.Contains(r.Err, "too old resource version") {
		t.Errorf("410: %+v", r)
	}
	drain("/api/v1/pods?watch=true&resourceVersion=proto-gone")
	if r := s.last(history.KindWatchEnd); r.Op != CauseGone || r.Metrics["events"] != 2 {
		t.Errorf("protobuf 410: %+v", r)
	}
	drain("/api/v1/pods?watch=true&resourceVersion=cut")
	if r := s.last(history.KindWatchEnd); r.Op != CauseConnectionLost || r.Err == "" || r.Metrics["events"] != 1 {
		t.Errorf("cut: %+v", r)
	}
	resp := get("/api/v1/pods?watch=true&resourceVersion=hold")
	time.Sleep(20 * time.Millisecond)
	resp.Body.Close()
	if r := s.last(history.KindWatchEnd); r.Op != CauseStopped {
		t.Errorf("client stop: %+v", r)
	}
	// An informer that stops cancels its request: reading fails with
	// context.Canceled, which is a stop too, not a lost connection.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/pods?watch=true&resourceVersion=hold", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if r := s.last(history.KindWatchEnd); r.Op != CauseStopped {
		t.Errorf("cancelled: %+v", r)
	}
	drain("/api/v1/pods?watch=true&resourceVersion=refused")
	if r := s.last(history.KindWatchEnd); r.Op != CauseRefused || !strings.Contains(r.Err, "429") {
		t.Errorf("refused: %+v", r)
	}
	want := []string{
		"relist:list(pods)", "relist:list(configmaps)",
		"watch-start(kvclusters.kv.driftlab.io)", "watch-end:terminated(kvclusters.kv.driftlab.io)",
		"watch-start(pods)", "watch-end:gone(pods)",
		"watch-start(pods)", "watch-end:gone(pods)",
		"watch-start(pods)", "watch-end:connection-lost(pods)",
		"watch-start(pods)", "watch-end:stopped(pods)",
		"watch-start(pods)", "watch-end:stopped(pods)",
		"watch-end:refused(pods)",
	}
	if got := s.kinds(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("records:\n got %v\nwant %v", got, want)
	}
}

// TestWatchTimeout: a watch the apiserver ends at the timeoutSeconds the
// client asked for is a timeout, not a termination.
func TestWatchTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
	}))
	defer srv.Close()
	s := &sink{}
	tr := New(s)
	base := time.Now()
	calls := 0
	tr.now = func() time.Time { calls++; return base.Add(time.Duration(calls) * 500 * time.Millisecond) } // 1 s timeout reached at the end
	c := &http.Client{Transport: tr.Wrap(http.DefaultTransport)}
	resp, err := c.Get(srv.URL + "/api/v1/pods?watch=1&timeoutSeconds=1")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if r := s.last(history.KindWatchEnd); r.Op != CauseTimeout {
		t.Errorf("%+v", r)
	}
}

func TestCollection(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/pods":                                          "pods",
		"/api/v1/namespaces/default/pods":                       "pods",
		"/apis/apps/v1/deployments":                             "deployments.apps",
		"/apis/kv.driftlab.io/v1alpha1/namespaces/x/kvclusters": "kvclusters.kv.driftlab.io",
		"/api/v1/namespaces/default/pods/p":                     "",
		"/api/v1/namespaces/default":                            "",
		"/apis/apps/v1/namespaces/x/deployments/d/scale":        "",
		"/api":     "",
		"/healthz": "",
	} {
		got, ok := collection(path)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", path, got, ok, want)
		}
	}
}

// Package watchtrace records what an operator's informers do on the wire:
// each watch they open and how it ends, and each relist. It wraps the
// operator's rest.Config transport (rest.Config.Wrap), so it needs no
// change to client-go: a watch is a GET with watch=true whose response
// body is the event stream, a list is a GET of a collection, and the way
// the body ends tells why the watch ended (the apiserver closed it at its
// timeout or earlier, the connection was lost, an ERROR event such as
// 410 Gone, or the client stopped it).
//
// The records are history records (history.KindWatchStart, KindWatchEnd,
// KindRelist) sent to a history.Sink: the reference operator's event
// stream to the harness.
package watchtrace

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/driftlab/driftlab/sim/history"
)

// Causes of a watch's end (the Op of a watch-end record).
const (
	// CauseTimeout: the apiserver ended the watch at the timeout the
	// client asked for (timeoutSeconds): the reflector's routine restart.
	CauseTimeout = "timeout"
	// CauseTerminated: the apiserver ended the stream cleanly before that
	// timeout: it terminated a watcher that could not keep up
	// (apiserver_terminated_watchers_total) or is shutting down.
	CauseTerminated = "terminated"
	// CauseConnectionLost: reading the stream failed (connection reset,
	// HTTP/2 connection lost, unexpected EOF).
	CauseConnectionLost = "connection-lost"
	// CauseGone: an ERROR event with 410 Gone: the watch's resource
	// version is older than the apiserver's watch cache (the reflector
	// relists).
	CauseGone = "gone"
	// CauseError: an ERROR event with another status.
	CauseError = "error"
	// CauseStopped: the client closed the stream (the informer stopped
	// it, for example after an event it could not decode or at shutdown).
	CauseStopped = "stopped"
	// CauseRefused: the watch request itself failed (a transport error or
	// a status other than 200).
	CauseRefused = "refused"
)

// Tracer records the watches and relists of one client.
type Tracer struct {
	sink history.Sink
	now  func() time.Time

	mu     sync.Mutex
	listed map[string]bool // reflectors (resource + selectors) that listed once
}

// New returns a tracer that emits to sink.
func New(sink history.Sink) *Tracer {
	return &Tracer{sink: sink, now: time.Now, listed: map[string]bool{}}
}

// Wrap is a rest.Config WrapTransport: cfg.Wrap(t.Wrap).
func (t *Tracer) Wrap(rt http.RoundTripper) http.RoundTripper { return &transport{t: t, next: rt} }

type transport struct {
	t    *Tracer
	next http.RoundTripper
}

// request is what the tracer makes of a request: a list or a watch of a
// collection, or nothing.
type request struct {
	resource string // "pods", "kvclusters.kv.driftlab.io"
	key      string // one reflector: path and selectors
	watch    bool
	// watchList: a watch that starts with the current state
	// (sendInitialEvents), the streaming form of a list.
	watchList bool
	timeout   time.Duration // timeoutSeconds, 0 when not given
	rv        string
}

// classify returns what r is, or false for any other request.
func classify(r *http.Request) (request, bool) {
	if r.Method != http.MethodGet || r.URL == nil {
		return request{}, false
	}
	resource, ok := collection(r.URL.Path)
	if !ok {
		return request{}, false
	}
	q := r.URL.Query()
	if q.Get("continue") != "" {
		return request{}, false // the next page of a list already counted
	}
	w := q.Get("watch")
	req := request{resource: resource, watch: w == "true" || w == "1", rv: q.Get("resourceVersion"),
		key: r.URL.Path + "?l=" + q.Get("labelSelector") + "&f=" + q.Get("fieldSelector")}
	req.watchList = req.watch && q.Get("sendInitialEvents") == "true"
	if s, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && s > 0 {
		req.timeout = time.Duration(s) * time.Second
	}
	return req, true
}

// collection reports whether path names a collection of a resource
// (/api/v1/pods, /api/v1/namespaces/ns/pods, /apis/g/v/r,
// /apis/g/v/namespaces/ns/r) and returns the resource, qualified by its
// group.
func collection(path string) (string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group string
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, rest = parts[1], parts[3:]
	default:
		return "", false
	}
	var res string
	switch {
	case len(rest) == 1:
		res = rest[0]
	case len(rest) == 3 && rest[0] == "namespaces":
		res = rest[2]
	default:
		return "", false // one object, a subresource, or a namespace
	}
	if group != "" {
		res += "." + group
	}
	return res, true
}

// listedBefore reports whether key listed successfully before.
func (t *Tracer) listedBefore(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.listed[key]
}

// relisted reports whether key listed before (and marks it listed): the
// first list of a reflector fills its cache, every later one is a relist.
func (t *Tracer) relisted(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := t.listed[key]
	t.listed[key] = true
	return seen
}

func (t *Tracer) emit(r history.Record) {
	r.Source = history.SourceOperator
	t.sink.Emit(r)
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	req, ok := classify(r)
	if !ok {
		return tr.next.RoundTrip(r)
	}
	t := tr.t
	start := t.now()
	resp, err := tr.next.RoundTrip(r)
	ok200 := err == nil && resp.StatusCode == http.StatusOK
	// Only a list that was served fills the cache: a refused first list
	// (429 while the apiserver starts) is tried again, not relisted.
	relist := false
	if (!req.watch || req.watchList) && ok200 {
		relist = t.relisted(req.key)
	}
	if !req.watch {
		if !relist && ok200 {
			return resp, err
		}
		if !t.listedBefore(req.key) {
			return resp, err // a refused first list
		}
		rec := history.Record{Kind: history.KindRelist, Resource: req.resource, Op: "list", Detail: "resourceVersion=" + req.rv}
		if err != nil || resp.StatusCode != http.StatusOK {
			rec.Err = failure(resp, err)
			rec.Metrics = map[string]float64{"duration_ms": ms(t.now().Sub(start))}
			t.emit(rec)
			return resp, err
		}
		// The relist is done when its body has been read: the informer
		// replaces its cache then.
		resp.Body = &listBody{ReadCloser: resp.Body, done: func() {
			rec.Metrics = map[string]float64{"duration_ms": ms(t.now().Sub(start))}
			t.emit(rec)
		}}
		return resp, err
	}
	detail := "resourceVersion=" + req.rv
	if req.timeout > 0 {
		detail += " timeoutSeconds=" + strconv.Itoa(int(req.timeout/time.Second))
	}
	if req.watchList {
		detail += " sendInitialEvents=true"
		if relist {
			t.emit(history.Record{Kind: history.KindRelist, Resource: req.resource, Op: "watch-list", Detail: detail})
		}
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.emit(history.Record{Kind: history.KindWatchEnd, Resource: req.resource, Op: CauseRefused, Detail: detail, Err: failure(resp, err),
			Metrics: map[string]float64{"duration_ms": ms(t.now().Sub(start))}})
		return resp, err
	}
	t.emit(history.Record{Kind: history.KindWatchStart, Resource: req.resource, Detail: detail})
	resp.Body = newWatchBody(t, req, resp, start)
	return resp, nil
}

func failure(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return "HTTP " + resp.Status
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// listBody calls done once, when the list's body is read to its end or
// closed.
type listBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *listBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *listBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// watchBody passes a watch's event stream through, counting its events
// (JSON objects, or length-delimited protobuf frames) and noting the first
// ERROR event, and records the watch's end once.
type watchBody struct {
	rc    io.ReadCloser
	t     *Tracer
	req   request
	start time.Time
	proto bool

	mu        sync.Mutex
	ended     bool
	closed    bool
	buf       []byte
	events    int
	bookmarks int
	bytes     int64
	errCode   int32
	errReason string
	json      jsonScanner
}

func newWatchBody(t *Tracer, req request, resp *http.Response, start time.Time) *watchBody {
	return &watchBody{rc: resp.Body, t: t, req: req, start: start, proto: strings.Contains(resp.Header.Get("Content-Type"), "protobuf")}
}

func (b *watchBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > 0 {
		b.bytes += int64(n)
		b.parse(p[:n])
	}
	if err != nil && !b.ended && !b.closed {
		cause := CauseConnectionLost
		switch {
		case errors.Is(err, context.Canceled):
			cause = CauseStopped // the client cancelled the request (its informer stopped)
		case errors.Is(err, io.EOF):
			cause = CauseTerminated
			if b.req.timeout > 0 && b.t.now().Sub(b.start) >= b.req.timeout-time.Second {
				cause = CauseTimeout
			}
		}
		msg := ""
		if cause == CauseConnectionLost {
			msg = err.Error()
		}
		b.endLocked(cause, msg)
	}
	return n, err
}

func (b *watchBody) Close() error {
	b.mu.Lock()
	if !b.ended {
		b.endLocked(CauseStopped, "")
	}
	b.closed = true
	b.mu.Unlock()
	return b.rc.Close()
}

// endLocked records the watch's end; an ERROR event the stream carried
// names the cause instead.
func (b *watchBody) endLocked(cause, msg string) {
	b.ended = true
	if b.errCode != 0 {
		cause, msg = CauseError, b.errReason
		if b.errCode == http.StatusGone {
			cause = CauseGone
		}
	}
	b.t.emit(history.Record{Kind: history.KindWatchEnd, Resource: b.req.resource, Op: cause, Err: msg,
		Detail: "resourceVersion=" + b.req.rv,
		Metrics: map[string]float64{
			"duration_ms": ms(b.t.now().Sub(b.start)),
			"events":      float64(b.events),
			"bookmarks":   float64(b.bookmarks),
			"bytes":       float64(b.bytes),
		}})
}

// maxFrame bounds the bytes held for one event: a larger one is counted
// without being looked into.
const maxFrame = 16 << 20

// parse feeds stream bytes to the frame parser.
func (b *watchBody) parse(p []byte) {
	if !b.proto {
		b.json.feed(p, b.event)
		return
	}
	b.buf = append(b.buf, p...)
	for len(b.buf) >= 4 {
		n := int(binary.BigEndian.Uint32(b.buf))
		if n > maxFrame {
			b.event("", nil) // not a frame we can hold: stop looking into the stream
			b.proto, b.buf = false, nil
			b.json = jsonScanner{skip: true}
			return
		}
		if len(b.buf) < 4+n {
			return
		}
		var we metav1.WatchEvent
		if err := we.Unmarshal(b.buf[4 : 4+n]); err == nil {
			b.event(we.Type, we.Object.Raw)
		} else {
			b.event("", nil)
		}
		b.buf = b.buf[4+n:]
	}
}

// protoMagic prefixes an object encoded by Kubernetes' protobuf serializer.
var protoMagic = []byte("k8s\x00")

// event counts one event; for an ERROR event it reads the status.
func (b *watchBody) event(typ string, object []byte) {
	switch typ {
	case "BOOKMARK":
		b.bookmarks++
		return
	case "ERROR":
		if b.errCode == 0 {
			b.errCode, b.errReason = statusOf(object)
		}
	}
	b.events++
}

// statusOf decodes an ERROR event's Status (protobuf or JSON).
func statusOf(raw []byte) (int32, string) {
	if bytes.HasPrefix(raw, protoMagic) {
		var u runtime.Unknown
		var st metav1.Status
		if u.Unmarshal(raw[len(protoMagic):]) == nil && st.Unmarshal(u.Raw) == nil {
			return nonZero(st.Code), st.Message
		}
		return -1, "undecodable ERROR event"
	}
	var st struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &st) == nil {
		return nonZero(st.Code), st.Message
	}
	return -1, "undecodable ERROR event"
}

// nonZero keeps an ERROR event without a code distinct from "no error".
func nonZero(c int32) int32 {
	if c == 0 {
		return -1
	}
	return c
}

// jsonScanner splits a stream of JSON objects (a JSON watch stream) into
// objects, holding only the object being read.
type jsonScanner struct {
	skip     bool // counting no more (an event too large to hold)
	obj      []byte
	depth    int
	inString bool
	escaped  bool
}

func (s *jsonScanner) feed(p []byte, event func(typ string, object []byte)) {
	if s.skip {
		return
	}
	for _, c := range p {
		if s.depth > 0 {
			s.obj = append(s.obj, c)
		}
		switch {
		case s.inString:
			switch {
			case s.escaped:
				s.escaped = false
			case c == '\\':
				s.escaped = true
			case c == '"':
				s.inString = false
			}
		case c == '"':
			s.inString = true
		case c == '{' || c == '[':
			if s.depth == 0 {
				s.obj = append(s.obj[:0], c)
			}
			s.depth++
		case c == '}' || c == ']':
			s.depth--
			if s.depth == 0 {
				var ev struct {
					Type   string          `json:"type"`
					Object json.RawMessage `json:"object"`
				}
				if json.Unmarshal(s.obj, &ev) == nil {
					event(ev.Type, ev.Object)
				} else {
					event("", nil)
				}
				s.obj = s.obj[:0]
			}
		}
		if len(s.obj) > maxFrame {
			s.skip, s.obj = true, nil
			return
		}
	}
}

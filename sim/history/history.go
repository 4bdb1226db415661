package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Sources of records.
const (
	SourceTruth    = "truth"
	SourceWorkload = "workload"
	SourceOperator = "operator"
	SourceKubelet  = "kubelet"
	SourceHarness  = "harness"
)

// Kinds of records.
const (
	// Truth, read from the committed state (etcd, or the apiserver's
	// watches on a cluster) at commit. The invariants read the first four;
	// the Pod records say what happened to the Pods of an object.
	KindSubject       = "subject"        // Subject: what the run tests (the first record)
	KindObjectCreated = "object-created" // Object, RV: an object of the subject kind appeared
	KindObjectDeleted = "object-deleted" // Object, RV
	KindTruth         = "truth"          // Object, Props: truths that changed at this commit; Pod: the Pod whose commit changed them
	KindReported      = "reported"       // Object, Props: reported values that changed at this commit; Detail: the field manager
	KindPodCreated    = "pod-created"    // Pod, Object
	KindPodReady      = "pod-ready"      // Pod, Object
	KindPodUnready    = "pod-unready"    // Pod, Object
	KindPodDeleted    = "pod-deleted"    // Pod, Object

	// Workload.
	KindOp = "op" // Op, Object, Replicas, Err

	// Kubelet.
	KindKubeletReady = "kubelet-ready" // Pod, Err

	// Operator.
	KindOperatorReady  = "operator-ready"  // Detail: metrics address
	KindEvent          = "event"           // Resource, Op (add/update/delete), Pod or Cluster
	KindReconcileStart = "reconcile-start" // Cluster
	KindReconcileEnd   = "reconcile-end"   // Cluster, Err, Detail
	KindStatusWrite    = "status-write"    // Cluster, Ready, ObservedGeneration, RV, Err
	KindRuntime        = "runtime-metrics" // Detail: tag; Metrics: runtime/metrics deltas since the previous sample
	// What the operator's informers did on the wire (operator/watchtrace).
	KindWatchStart = "watch-start" // Resource, Detail: the request's resourceVersion and timeoutSeconds
	KindWatchEnd   = "watch-end"   // Resource, Op: cause (timeout, terminated, connection-lost, gone, error, stopped, refused), Err; Metrics: duration_ms, events, bookmarks, bytes
	KindRelist     = "relist"      // Resource, Op: list or watch-list, Err; Metrics: duration_ms (a list after the reflector's first)

	// Harness phases.
	KindWorkloadStart = "workload-start"
	KindWorkloadEnd   = "workload-end"
	KindConverged     = "converged"
	KindRunEnd        = "run-end"
	KindFaultStart    = "fault-start"   // Op: fault type, Detail: parameters, Err: why it could not start
	KindFaultStop     = "fault-stop"    // Op: fault type
	KindFaultSkipped  = "fault-skipped" // Op: fault type, Detail: reason
	KindEtcdMetrics   = "etcd-metrics"  // Detail: tag; Metrics: etcd metrics
	// KindPlaneSample is a once-a-second sample of the control plane's
	// metrics (etcd's in-process ones and kube-apiserver's /metrics).
	KindPlaneSample = "plane-sample" // Metrics: see sim/harness's plane sampler
)

// Record is one line of history.jsonl. Fields a kind does not use are empty.
type Record struct {
	// T is the time since the run started.
	T time.Duration `json:"t_ns"`
	// Wall is a wall-clock time in Unix nanoseconds; only records that cross
	// a process boundary (operator) carry it, and the recorder converts it to T.
	Wall int64 `json:"wall_ns,omitempty"`

	Source string `json:"source"`
	Kind   string `json:"kind"`
	// Object is the object of the subject kind a record is about
	// (namespace/name): truth, workload and kubelet records.
	Object string `json:"object,omitempty"`
	// Cluster is the KVCluster a reference-operator record is about
	// (namespace/name).
	Cluster string `json:"cluster,omitempty"`
	Pod     string `json:"pod,omitempty"` // namespace/name

	Op                 string `json:"op,omitempty"`
	Resource           string `json:"resource,omitempty"`
	Replicas           *int32 `json:"replicas,omitempty"`
	Ready              *int32 `json:"ready,omitempty"`
	Generation         int64  `json:"generation,omitempty"`
	ObservedGeneration int64  `json:"observed_generation,omitempty"`
	Condition          string `json:"condition,omitempty"`
	RV                 int64  `json:"rv,omitempty"`
	Err                string `json:"err,omitempty"`
	Detail             string `json:"detail,omitempty"`
	// Metrics carries scraped values (etcd metrics, runtime metrics).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Props are property values (truth and reported records), in the
	// order the subject declares the properties.
	Props []Prop `json:"props,omitempty"`
	// Subject describes what the run tests (subject records).
	Subject *SubjectInfo `json:"subject,omitempty"`
}

// Prop is one property's value: compact JSON text, "" when the value is
// missing (a reported field the operator has not written).
type Prop struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// MarshalJSON writes the value as the JSON it is: {"name":"ready","value":"True"}.
func (p Prop) MarshalJSON() ([]byte, error) {
	name, err := json.Marshal(p.Name)
	if err != nil {
		return nil, err
	}
	b := append([]byte(`{"name":`), name...)
	if p.Value != "" {
		if !json.Valid([]byte(p.Value)) {
			return nil, fmt.Errorf("history: property %s: value %q is not JSON", p.Name, p.Value)
		}
		b = append(append(b, `,"value":`...), p.Value...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Prop) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Name, p.Value = raw.Name, string(raw.Value)
	return nil
}

// SubjectInfo is what a history says about the run's subject: enough for
// the invariants to judge the history without the declaration that made
// it (a Go truth function, a scenario file elsewhere).
type SubjectInfo struct {
	// Kind is the subject's group/version/kind ("kv.driftlab.io/v1alpha1, Kind=KVCluster").
	Kind string `json:"kind"`
	// Operator names the operator under test.
	Operator string `json:"operator,omitempty"`
	// Properties in declaration order.
	Properties []PropertyInfo `json:"properties"`
}

// Latency modes of a property: which truth changes start a latency sample.
const (
	LatencyChanges   = "changes"   // every change
	LatencyIncreases = "increases" // a number that grows (Pods becoming Ready)
	LatencyOff       = "off"       // none: the property is only checked for drift
)

// Reflection rules of a property: when a reported value reflects a
// change of the truth.
const (
	// ReflectEqual: the reported value equals the changed truth, or the
	// truth of that moment.
	ReflectEqual = "equal"
	// ReflectAtLeast: a number that is at least the changed truth, or
	// equals the truth of that moment.
	ReflectAtLeast = "atLeast"
)

// PropertyInfo is how the invariants treat one property.
type PropertyInfo struct {
	Name string `json:"name"`
	// Reported is the field path read; Truth says what it must equal.
	Reported string `json:"reported"`
	Truth    string `json:"truth"`
	// Latency is changes, increases or off; Reflect equal or atLeast.
	Latency string `json:"latency"`
	Reflect string `json:"reflect"`
	// NoStaleness exempts the property from the staleness check.
	NoStaleness bool `json:"no_staleness,omitempty"`
}

// Int32 returns a pointer to v, for Record's optional counts.
func Int32(v int32) *int32 { return &v }

// Recorder appends records to history.jsonl as they happen and keeps them in
// memory for the invariants. It is safe for concurrent use.
type Recorder struct {
	start   time.Time
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	records []Record
	counts  map[string]int
	subs    []func(Record)
	err     error
}

// NewRecorder creates path and records into it; start is time zero of the run.
func NewRecorder(path string, start time.Time) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating history: %w", err)
	}
	return &Recorder{start: start, f: f, w: bufio.NewWriterSize(f, 64<<10), counts: map[string]int{}}, nil
}

// Start returns time zero of the run.
func (r *Recorder) Start() time.Time { return r.start }

// Since returns the run time of a wall-clock instant.
func (r *Recorder) Since(t time.Time) time.Duration { return t.Sub(r.start) }

// Subscribe calls fn, under the recorder's lock and in order, for every record
// added after the call. fn must not call back into the recorder.
func (r *Recorder) Subscribe(fn func(Record)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs = append(r.subs, fn)
}

// Add records rec. A zero T is stamped with the current time (or converted
// from Wall when set).
func (r *Recorder) Add(rec Record) {
	if rec.Wall != 0 {
		rec.T = time.Unix(0, rec.Wall).Sub(r.start)
	} else if rec.T == 0 {
		rec.T = time.Since(r.start)
	}
	b, err := json.Marshal(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		_, err = r.w.Write(append(b, '\n'))
	}
	if err != nil && r.err == nil {
		r.err = err
	}
	r.records = append(r.records, rec)
	r.counts[rec.Kind]++
	for _, fn := range r.subs {
		fn(rec)
	}
}

// Flush writes buffered records to disk.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// Count returns how many records of a kind were added.
func (r *Recorder) Count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[kind]
}

// Records returns a copy of everything recorded so far.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	err := r.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Read parses a history.jsonl stream.
func Read(rd io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return out, fmt.Errorf("history line %d: %w", line, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// Sink receives records. The operator reports through a Sink: an Emitter in
// its own process, a virtual-clock sink on the virtual backend.
type Sink interface {
	Emit(Record)
}

// Discard is a Sink that drops every record.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Record) {}

// Emitter writes records as JSON lines to a writer, stamped with the wall
// clock; the operator process uses it to stream its records to the harness.
type Emitter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEmitter returns an emitter writing to w; a nil w discards.
func NewEmitter(w io.Writer) *Emitter { return &Emitter{w: w} }

var _ Sink = (*Emitter)(nil)

// Emit stamps rec with the wall clock and writes it.
func (e *Emitter) Emit(rec Record) {
	if e == nil || e.w == nil {
		return
	}
	rec.Wall = time.Now().UnixNano()
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(b, '\n'))
}

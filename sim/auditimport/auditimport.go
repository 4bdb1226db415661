package auditimport

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/driftlab/driftlab/scenarios"
)

// Reference is the reference operator's resource, what Import reads when
// Options names none.
var Reference = Target{Resource: schema.GroupResource{Group: "kv.driftlab.io", Resource: "kvclusters"}, Kind: "KVCluster", Replicas: []string{"spec", "replicas"}}

// Target is the kind whose requests an import replays.
type Target struct {
	Resource schema.GroupResource
	Kind     string
	// Replicas is the replica count's field path as keys; nil when the
	// kind has none (changes then replay as patches).
	Replicas []string
}

// Policy is an audit policy that records the requests to gr with their
// bodies and nothing else (Pods, status writes and reads would make the
// log large for no use).
func Policy(gr schema.GroupResource) string {
	return fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: RequestResponse
    resources:
      - group: %q
        resources: [%q]
    verbs: ["create", "update", "patch", "delete"]
  - level: None
`, gr.Group, gr.Resource)
}

// AuditPolicy is the policy for the reference operator's KVClusters.
var AuditPolicy = Policy(Reference.Resource)

// Options configure Import.
type Options struct {
	// Name is the scenario's name; default derived from the log's file name.
	Name string
	// Source names the log in errors and the description.
	Source string
	// Namespace keeps only this namespace's KVClusters; required when the
	// log holds more than one.
	Namespace string
	// Users, when set, keeps only requests of these users (for example the
	// client that caused an incident, not the operator).
	Users []string
	// Target is the kind to replay; default Reference.
	Target Target
	// Into, when set, is the scenario the operations go into: its subject,
	// operator, faults and invariants are kept, its workload's operations,
	// duration and namespace replaced. Without it the result tests the
	// reference operator.
	Into *scenarios.Scenario
}

// Stats counts what the importer read, kept and left out, and why.
type Stats struct {
	Lines, Events, Kept int
	// Skipped counts left-out events by reason.
	Skipped map[string]int
	// Users counts kept operations by user.
	Users map[string]int
	// First is the request time of the first kept event.
	First time.Time
	// Span is from the first to the last kept event.
	Span time.Duration
}

func (st *Stats) skip(reason string) { st.Skipped[reason]++ }

// Summary is a one-paragraph account of an import.
func (st *Stats) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d lines, %d audit events, %d operations kept over %s", st.Lines, st.Events, st.Kept, st.Span.Round(time.Millisecond))
	keys := make([]string, 0, len(st.Skipped))
	for k := range st.Skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "; left out %d: %s", st.Skipped[k], k)
	}
	return b.String()
}

type objState struct {
	replicas    int64
	annotations map[string]string
	spec        map[string]any // without the replica count
}

// ImportFile imports the audit log at path.
func ImportFile(path string, o Options) (*scenarios.Scenario, *Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if o.Source == "" {
		o.Source = path
	}
	if o.Name == "" {
		o.Name = NameFrom(path)
	}
	return Import(f, o)
}

// NameFrom derives a scenario name from a file name: "prod-audit.log" →
// "prod-audit".
func NameFrom(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "imported"
	}
	return name
}

type event struct {
	at   time.Time
	ev   *auditv1.Event
	line int // in the log
}

// MaxSpan is the longest stretch of time an imported log may cover, from
// its first kept request to its last: the workload replays it in real (or
// simulated) time, so a longer one is almost surely a log with a wrong
// timestamp, and a span of centuries does not fit a time.Duration.
const MaxSpan = 30 * 24 * time.Hour

// source is the audit event an operation was made from, for errors that
// name the event rather than a line of the generated scenario.
type source struct {
	line    int
	auditID string
	verb    string
	name    string
}

func (src source) String() string {
	return fmt.Sprintf("audit event %s (line %d: %s %s)", src.auditID, src.line, src.verb, src.name)
}

// Import reads an audit log and returns a scenario whose workload is the
// log's KVCluster operations, in time order.
func Import(r io.Reader, o Options) (*scenarios.Scenario, *Stats, error) {
	if o.Source == "" {
		o.Source = "audit log"
	}
	if o.Name == "" {
		o.Name = "imported"
	}
	if o.Target.Resource.Resource == "" {
		o.Target = Reference
	}
	tgt := o.Target
	what := tgt.Kind
	st := &Stats{Skipped: map[string]int{}, Users: map[string]int{}}
	users := map[string]bool{}
	for _, u := range o.Users {
		users[u] = true
	}
	var evs []event
	namespaces := map[string]bool{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		st.Lines++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		ev := &auditv1.Event{}
		if err := json.Unmarshal([]byte(line), ev); err != nil {
			return nil, st, fmt.Errorf("%s:%d: not an audit event (JSON): %w", o.Source, st.Lines, err)
		}
		if ev.Kind != "Event" || ev.APIVersion != "audit.k8s.io/v1" {
			return nil, st, fmt.Errorf("%s:%d: kind %q apiVersion %q: want audit.k8s.io/v1 Event objects, one per line", o.Source, st.Lines, ev.Kind, ev.APIVersion)
		}
		st.Events++
		ref := ev.ObjectRef
		switch {
		case ev.Stage != auditv1.StageResponseComplete:
			st.skip("stage other than ResponseComplete")
			continue
		case ref == nil || ref.APIGroup != tgt.Resource.Group || ref.Resource != tgt.Resource.Resource:
			st.skip("not a " + what)
			continue
		case ref.Subresource != "":
			st.skip(what + " " + ref.Subresource + " subresource (the operator's writes)")
			continue
		case ev.Verb != "create" && ev.Verb != "update" && ev.Verb != "patch" && ev.Verb != "delete":
			st.skip("verb " + ev.Verb)
			continue
		case ev.ResponseStatus == nil || ev.ResponseStatus.Code < 200 || ev.ResponseStatus.Code > 299:
			st.skip("failed request (non-2xx)")
			continue
		case len(users) > 0 && !users[ev.User.Username]:
			st.skip("user not selected")
			continue
		case o.Namespace != "" && ref.Namespace != o.Namespace:
			st.skip("other namespace")
			continue
		case seen[string(ev.AuditID)]:
			st.skip("duplicate audit ID")
			continue
		}
		seen[string(ev.AuditID)] = true
		namespaces[ref.Namespace] = true
		evs = append(evs, event{ev.RequestReceivedTimestamp.Time, ev, st.Lines})
	}
	if err := sc.Err(); err != nil {
		return nil, st, fmt.Errorf("%s: %w", o.Source, err)
	}
	if len(namespaces) > 1 {
		ns := make([]string, 0, len(namespaces))
		for n := range namespaces {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		return nil, st, fmt.Errorf("%s: %s objects in %d namespaces (%s): choose one with --namespace", o.Source, what, len(ns), strings.Join(ns, ", "))
	}
	if len(evs) == 0 {
		return nil, st, fmt.Errorf("%s: no successful create/update/patch/delete of a %s at stage ResponseComplete (%s)", o.Source, what, st.Summary())
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	t0 := evs[0].at
	st.First = t0
	first, last := evs[0], evs[len(evs)-1]
	// Compared in seconds: Time.Sub saturates at about 292 years.
	if last.at.Unix()-t0.Unix() > int64(MaxSpan/time.Second) {
		return nil, st, fmt.Errorf("%s: the kept requests span %s to %s (from %s to %s), more than the %s an import may cover: check the timestamps",
			o.Source, t0.UTC().Format(time.RFC3339), last.at.UTC().Format(time.RFC3339), sourceOf(first), sourceOf(last), MaxSpan)
	}
	st.Span = last.at.Sub(t0)

	var (
		ops  []scenarios.Operation
		srcs []source // srcs[i] made ops[i]
	)
	state := map[string]*objState{}
	var cur source
	add := func(op scenarios.Operation, user string) {
		ops = append(ops, op)
		srcs = append(srcs, cur)
		st.Kept++
		st.Users[user]++
	}
	prepend := func(op scenarios.Operation) {
		ops = append([]scenarios.Operation{op}, ops...)
		srcs = append([]source{cur}, srcs...)
	}
	create := func(at scenarios.Duration, name string, s *objState) scenarios.Operation {
		return scenarios.Operation{At: at, Op: "create", Name: name, Replicas: int(s.replicas)}
	}
	for _, e := range evs {
		ev := e.ev
		cur = sourceOf(e)
		name := ev.ObjectRef.Name
		at := scenarios.Duration{Duration: e.at.Sub(t0).Round(time.Millisecond)}
		user := ev.User.Username
		switch ev.Verb {
		case "create":
			obj, err := object(ev, tgt)
			if err != nil {
				return nil, st, fmt.Errorf("%s: audit event %s (create %s): %w", o.Source, ev.AuditID, name, err)
			}
			if name == "" {
				name = obj.GetName()
			}
			state[name] = stateOf(obj, tgt)
			add(create(at, name, state[name]), user)
		case "delete":
			if state[name] == nil { // existed before the log began
				prepend(scenarios.Operation{Op: "create", Name: name, Replicas: 1})
				st.skip("object deleted but not created in the log: created at 0s with 1 replica instead")
			}
			delete(state, name)
			add(scenarios.Operation{At: at, Op: "delete", Name: name}, user)
		default: // update, patch
			obj, err := object(ev, tgt)
			if err != nil {
				return nil, st, fmt.Errorf("%s: audit event %s (%s %s): %w", o.Source, ev.AuditID, ev.Verb, name, err)
			}
			now := stateOf(obj, tgt)
			prev := state[name]
			if prev == nil { // existed before the log began
				prev = &objState{replicas: now.replicas, spec: now.spec} // its annotations are replayed as changes
				state[name] = prev
				prepend(create(scenarios.Duration{}, name, prev))
				st.skip("object existed before the log began: created at 0s instead")
			}
			changed := false
			touched := patchedFields(ev, tgt) // a patch that sets a field to its value is still a request to replay
			if tgt.Replicas != nil && (now.replicas != prev.replicas || touched.replicas) {
				add(scenarios.Operation{At: at, Op: "scale", Name: name, Replicas: int(now.replicas)}, user)
				changed = true
			}
			if patch := specPatch(prev.spec, now.spec); patch != nil {
				add(scenarios.Operation{At: at, Op: "patch", Name: name, Patch: map[string]any{"spec": patch}}, user)
				changed = true
			}
			keys := make([]string, 0, len(now.annotations))
			for k := range now.annotations {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if strings.HasPrefix(k, "kubectl.kubernetes.io/") {
					continue
				}
				if old, ok := prev.annotations[k]; !ok || old != now.annotations[k] || touched.annotations[k] {
					op := scenarios.Operation{At: at, Op: "annotate", Name: name, Value: now.annotations[k]}
					if k != scenarios.DefaultAnnotationKey {
						op.Key = k
					}
					add(op, user)
					changed = true
				}
			}
			for k := range prev.annotations {
				if _, ok := now.annotations[k]; !ok {
					st.skip("annotation removed (not replayable)")
				}
			}
			*prev = *now
			if !changed {
				st.skip(ev.Verb + " that changed neither the spec nor an annotation")
			}
		}
	}
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return ops[order[i]].At.Duration < ops[order[j]].At.Duration })
	sortedOps, sortedSrcs := make([]scenarios.Operation, len(ops)), make([]source, len(ops))
	for k, i := range order {
		sortedOps[k], sortedSrcs[k] = ops[i], srcs[i]
	}
	ops, srcs = sortedOps, sortedSrcs

	ns := "default"
	for n := range namespaces {
		if n != "" {
			ns = n
		}
	}
	end := ops[len(ops)-1].At.Duration
	dur := (end + time.Second).Truncate(100 * time.Millisecond)
	desc := fmt.Sprintf("Imported from %s: %d %s operations over %s from %s.", filepath.Base(o.Source), len(ops), what, st.Span.Round(time.Millisecond), t0.UTC().Format(time.RFC3339))
	var s *scenarios.Scenario
	if o.Into != nil {
		c := *o.Into
		s = &c
		s.Name, s.Description = o.Name, desc
	} else {
		y := fmt.Sprintf("name: %s\ndescription: %q\n", o.Name, desc)
		var err error
		if s, err = scenarios.Parse(o.Name+".yaml", []byte(y)); err != nil {
			return nil, st, fromEvents(o, err, srcs)
		}
	}
	s.Workload.Duration = scenarios.Duration{Duration: dur}
	s.Workload.Namespace = ns
	s.Workload.Objects, s.Workload.DeleteObjects = 0, 0
	s.Workload.Operations = ops
	s.File = ""
	// Validate the whole scenario as a loader would see it.
	out, err := scenarios.Encode(s)
	if err != nil {
		return nil, st, fromEvents(o, err, srcs)
	}
	if s, err = scenarios.Parse(o.Name+".yaml", out); err != nil {
		return nil, st, fromEvents(o, err, srcs)
	}
	return s, st, nil
}
func sourceOf(e event) source {
	return source{line: e.line, auditID: string(e.ev.AuditID), verb: e.ev.Verb, name: e.ev.ObjectRef.Name}
}

// fromEvents turns an error about the generated scenario into one about
// the log: a field of workload.operations[i] is reported at the audit event
// that operation came from (its line in the log and its audit ID), never at
// a line of the generated YAML, which the user has not seen.
func fromEvents(o Options, err error, srcs []source) error {
	var fe *scenarios.FieldError
	if !errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", o.Source, err)
	}
	const prefix = "workload.operations["
	if rest, ok := strings.CutPrefix(fe.Field, prefix); ok {
		if n, tail, ok := strings.Cut(rest, "]"); ok {
			if i, aerr := strconv.Atoi(n); aerr == nil && i >= 0 && i < len(srcs) {
				src := srcs[i]
				field := "operation"
				if tail = strings.TrimPrefix(tail, "."); tail != "" {
					field += " field " + tail
				}
				return fmt.Errorf("%s:%d: audit event %s (%s %s) gives an operation the scenario format refuses: %s: %s", o.Source, src.line, src.auditID, src.verb, src.name, field, fe.Msg)
			}
		}
	}
	switch fe.Field {
	case "name":
		return fmt.Errorf("%s: scenario name %q (--name, or derived from the log's file name): %s", o.Source, o.Name, fe.Msg)
	case "":
		return fmt.Errorf("%s: the imported scenario (%d operations) is refused: %s; keep fewer requests with --namespace or --user, or import a shorter stretch of the log", o.Source, len(srcs), fe.Msg)
	}
	return fmt.Errorf("%s: the imported scenario is refused: %s: %s", o.Source, fe.Field, fe.Msg)
}

// object decodes the object an event left behind: its response object,
// else its request object when that is a whole object (create, update).
func object(ev *auditv1.Event, tgt Target) (*unstructured.Unstructured, error) {
	var bodies [][]byte
	if ev.ResponseObject != nil {
		bodies = append(bodies, ev.ResponseObject.Raw)
	}
	if ev.RequestObject != nil && ev.Verb != "patch" {
		bodies = append(bodies, ev.RequestObject.Raw)
	}
	for _, b := range bodies {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("body is not a %s: %w", tgt.Kind, err)
		}
		if u.GetKind() == tgt.Kind {
			return u, nil
		}
	}
	return nil, fmt.Errorf("no %s in the event's request or response: record the audit log at level RequestResponse for %s (driftlab import audit --help shows a policy)", tgt.Kind, tgt.Resource)
}

// stateOf is what the replay keeps of an object: its replica count,
// annotations, and the rest of its spec.
func stateOf(u *unstructured.Unstructured, tgt Target) *objState {
	st := &objState{annotations: u.GetAnnotations()}
	if tgt.Replicas != nil {
		st.replicas, _, _ = unstructured.NestedInt64(u.Object, tgt.Replicas...)
	}
	if spec, ok, _ := unstructured.NestedMap(u.Object, "spec"); ok {
		if len(tgt.Replicas) == 2 && tgt.Replicas[0] == "spec" {
			delete(spec, tgt.Replicas[1])
		}
		st.spec = spec
	}
	return st
}

// specPatch is the merge patch that turns one spec (replica count aside)
// into the next, nil when they are equal.
func specPatch(prev, next map[string]any) map[string]any {
	patch := map[string]any{}
	for k, v := range next {
		if !jsonEqual(prev[k], v) {
			patch[k] = v
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			patch[k] = nil
		}
	}
	if len(patch) == 0 {
		return nil
	}
	return patch
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// touched is what a patch's body sets.
type touched struct {
	replicas    bool
	annotations map[string]bool
}

// patchedFields reads a patch request's body (merge or strategic merge
// patch, as JSON) for the replica count and metadata.annotations.
func patchedFields(ev *auditv1.Event, tgt Target) touched {
	var t touched
	if ev.Verb != "patch" || ev.RequestObject == nil {
		return t
	}
	var body struct {
		Metadata struct {
			Annotations map[string]*string `json:"annotations"`
		} `json:"metadata"`
	}
	if json.Unmarshal(ev.RequestObject.Raw, &body) != nil {
		return t
	}
	var whole map[string]any
	if json.Unmarshal(ev.RequestObject.Raw, &whole) == nil && tgt.Replicas != nil {
		_, t.replicas, _ = unstructured.NestedFieldNoCopy(whole, tgt.Replicas...)
	}
	t.annotations = map[string]bool{}
	for k, v := range body.Metadata.Annotations {
		if v != nil {
			t.annotations[k] = true
		}
	}
	return t
}

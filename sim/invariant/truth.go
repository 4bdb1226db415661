package invariant

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/driftlab/driftlab/sim/history"
)

// ObjectState is the truth and the reported value of every property of
// one object of the subject kind, in the order Truth.Properties lists them.
type ObjectState struct {
	Truth, Reported []string
}

// Truth is the state of the world replayed from truth records: for every
// object of the subject, each property's truth and reported value. The
// subject record at the start of a history says which properties there
// are and how they are judged; a property a record names that it did not
// declare is judged by the defaults (latency on every change, reflected
// when equal, checked for staleness).
type Truth struct {
	// Properties are the subject's properties, in declaration order.
	Properties []history.PropertyInfo
	// Objects maps "namespace/name" to the object's state.
	Objects map[string]*ObjectState
	// Kind and Operator come from the subject record.
	Kind, Operator string

	index map[string]int
}

// NewTruth returns an empty world.
func NewTruth() *Truth {
	return &Truth{Objects: map[string]*ObjectState{}, index: map[string]int{}}
}

// Apply updates the world with one record; records other than the
// subject, object and truth records are ignored.
func (t *Truth) Apply(r history.Record) { t.apply(&r) }

func (t *Truth) apply(r *history.Record) {
	switch r.Kind {
	case history.KindSubject:
		if r.Subject != nil {
			t.declare(r.Subject)
		}
	case history.KindObjectCreated:
		t.object(r.Object)
	case history.KindObjectDeleted:
		delete(t.Objects, r.Object)
	case history.KindTruth, history.KindReported:
		o := t.object(r.Object)
		for _, p := range r.Props {
			i := t.prop(p.Name)
			if i >= len(o.Truth) {
				t.grow(o)
			}
			if r.Kind == history.KindTruth {
				o.Truth[i] = p.Value
			} else {
				o.Reported[i] = p.Value
			}
		}
	}
}

// declare sets the properties from a subject record (once, at the start).
func (t *Truth) declare(s *history.SubjectInfo) {
	t.Kind, t.Operator = s.Kind, s.Operator
	for _, p := range s.Properties {
		if _, ok := t.index[p.Name]; !ok {
			t.index[p.Name] = len(t.Properties)
			t.Properties = append(t.Properties, p)
		}
	}
}

// prop returns a property's index, declaring it with the defaults when no
// subject record did.
func (t *Truth) prop(name string) int {
	if i, ok := t.index[name]; ok {
		return i
	}
	t.index[name] = len(t.Properties)
	t.Properties = append(t.Properties, history.PropertyInfo{Name: name, Reported: name, Truth: "(undeclared)",
		Latency: history.LatencyChanges, Reflect: history.ReflectEqual})
	return len(t.Properties) - 1
}

func (t *Truth) object(key string) *ObjectState {
	o := t.Objects[key]
	if o == nil {
		o = &ObjectState{}
		t.grow(o)
		t.Objects[key] = o
	}
	return o
}

func (t *Truth) grow(o *ObjectState) {
	for len(o.Truth) < len(t.Properties) {
		o.Truth = append(o.Truth, "null")
		o.Reported = append(o.Reported, "")
	}
}

// Keys returns the object keys in order.
func (t *Truth) Keys() []string {
	keys := make([]string, 0, len(t.Objects))
	for k := range t.Objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// equal reports whether a reported value equals a truth: a missing
// reported value equals only a null truth.
func equal(reported, truth string) bool {
	return reported == truth || reported == "" && truth == "null"
}

// inSync is InSync without the explanation (no formatting on the replay's
// hot path).
func (t *Truth) inSync(o *ObjectState) bool {
	for i := range o.Truth {
		if !equal(o.Reported[i], o.Truth[i]) {
			return false
		}
	}
	return true
}

// InSync reports whether an object's reported values equal their truths,
// and if not, how the first that differs does.
func (t *Truth) InSync(key string) (bool, string) {
	o := t.Objects[key]
	if o == nil {
		return false, "no such object"
	}
	for i := range o.Truth {
		if equal(o.Reported[i], o.Truth[i]) {
			continue
		}
		p := t.Properties[i]
		if o.Reported[i] == "" {
			return false, fmt.Sprintf("%s not written, but the truth (%s) is %s", p.Reported, p.Truth, o.Truth[i])
		}
		return false, fmt.Sprintf("%s is %s, but the truth (%s) is %s", p.Reported, o.Reported[i], p.Truth, o.Truth[i])
	}
	return true, ""
}

// Converged reports whether every object's reported values equal the
// truth; when not, it names the first object that differs and how.
func (t *Truth) Converged() (bool, string) {
	for _, k := range t.Keys() {
		if ok, why := t.InSync(k); !ok {
			return false, k + ": " + why
		}
	}
	return true, ""
}

// AllInSync is Converged without the explanation: for a harness that
// asks after every commit.
func (t *Truth) AllInSync() bool {
	for _, o := range t.Objects {
		if !t.inSync(o) {
			return false
		}
	}
	return true
}

// Sorted returns the records ordered by T (stable), the order the checks
// replay them in.
func Sorted(recs []history.Record) []history.Record {
	out := append([]history.Record(nil), recs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].T < out[j].T })
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// number reads a canonical JSON integer; ok is false for anything else.
func number(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

package subject

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Path is a compiled field path into an object:
//
//	status.readyReplicas
//	status.conditions[type=Ready].status     the element whose type is Ready
//	spec.containers[0].image                 an index
//	metadata.annotations["example.com/x"]    a key with dots
//
// It reads typed objects (by their JSON field names, as the API serves
// them) and unstructured ones alike, so a path means the same on every
// backend. Written by hand rather than with client-go's jsonpath: the
// virtual backend reads reported values on every status commit, and a
// compiled path over cached struct fields costs a fraction of a template
// walk.
type Path struct {
	text  string
	steps []step
	// plan is the path compiled for the Go type it last read (a typed
	// object's field indexes resolved once); shared by every run that
	// reads the path, so it is replaced, never changed.
	plan atomic.Pointer[typedPlan]
}

// typedPlan is a path resolved against one Go type: each step a field
// index, a map key or a list step, so that reading it walks no field
// names.
type typedPlan struct {
	t     reflect.Type
	ok    bool // false: the type has a dynamic part (an interface); walk by name
	steps []planStep
	fast  fastPlan
}

// fastPlan reads a path made of struct fields held by value (and at most
// one [field=value] step over a list of structs) at fixed offsets from the
// object's address, without reflection: the virtual backend reads a
// reported value at every status commit, and reflection's per-field calls
// were a tenth of a run. It answers only for a non-zero scalar; anything
// else (a zero value, which omitempty may make missing) goes to the
// reflective plan, which is the reference (TestFastPlanAgrees).
type fastPlan struct {
	ok   bool
	off  uintptr      // to the value, or to the list of a select
	kind reflect.Kind // of the value
	sel  bool
	// A select: each element's size, the selected field's offset (a
	// string), the value it must have, and the value's offset in the
	// element.
	elemSize, selOff, restOff uintptr
	selValue                  string
}

type planStep struct {
	kind      stepKind
	index     []int // struct field
	omitEmpty bool
	key       reflect.Value // map key, converted to the map's key type
	list      int           // stepIndex
	sel       []int         // stepSelect: the selected field's index in the element
	selString bool          // the selected field is a string kind: compared without formatting
	value     string
	isStruct  bool // a struct field step (else map)
}

type stepKind uint8

const (
	stepKey    stepKind = iota // a field or map key
	stepIndex                  // [N]
	stepSelect                 // [key=value]
)

type step struct {
	kind  stepKind
	name  string // key, or the selected field
	value string // the selected field's value
	index int
}

// String is the path as written.
func (p *Path) String() string { return p.text }

// ParsePath compiles a field path.
func ParsePath(s string) (*Path, error) {
	p := &Path{text: s}
	if s == "" {
		return nil, fmt.Errorf("empty field path")
	}
	i := 0
	expectKey := true
	for i < len(s) {
		switch {
		case s[i] == '.':
			if expectKey {
				return nil, fmt.Errorf("field path %q: empty segment at %d", s, i)
			}
			expectKey = true
			i++
		case s[i] == '[':
			if expectKey && i > 0 {
				return nil, fmt.Errorf("field path %q: '[' after '.' at %d", s, i)
			}
			end, st, err := parseBracket(s, i)
			if err != nil {
				return nil, err
			}
			p.steps = append(p.steps, st)
			i = end
			expectKey = false
		default:
			if !expectKey {
				return nil, fmt.Errorf("field path %q: want '.' or '[' at %d", s, i)
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				if !isKeyByte(s[j]) {
					return nil, fmt.Errorf("field path %q: %q is not allowed in a name (write [\"key\"] for other keys)", s, s[j])
				}
				j++
			}
			p.steps = append(p.steps, step{kind: stepKey, name: s[i:j]})
			i = j
			expectKey = false
		}
	}
	if expectKey {
		return nil, fmt.Errorf("field path %q ends with '.'", s)
	}
	return p, nil
}

func isKeyByte(c byte) bool {
	return c == '_' || c == '-' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func parseBracket(s string, i int) (int, step, error) {
	end := strings.IndexByte(s[i:], ']')
	if s[i+1:] != "" && s[i+1] == '"' {
		// A quoted key may hold ']'.
		q := i + 1
		var key string
		rest := s[q:]
		n := 1
		for n < len(rest) && rest[n] != '"' {
			if rest[n] == '\\' {
				n++
			}
			n++
		}
		if n >= len(rest) {
			return 0, step{}, fmt.Errorf("field path %q: unterminated quoted key at %d", s, i)
		}
		if err := json.Unmarshal([]byte(rest[:n+1]), &key); err != nil {
			return 0, step{}, fmt.Errorf("field path %q: bad quoted key at %d: %v", s, i, err)
		}
		close := q + n + 1
		if close >= len(s) || s[close] != ']' {
			return 0, step{}, fmt.Errorf("field path %q: want ']' after the quoted key at %d", s, close)
		}
		return close + 1, step{kind: stepKey, name: key}, nil
	}
	if end < 0 {
		return 0, step{}, fmt.Errorf("field path %q: unterminated '[' at %d", s, i)
	}
	inner := s[i+1 : i+end]
	if k, v, ok := strings.Cut(inner, "="); ok {
		if k == "" || v == "" {
			return 0, step{}, fmt.Errorf("field path %q: want [field=value], got [%s]", s, inner)
		}
		return i + end + 1, step{kind: stepSelect, name: k, value: v}, nil
	}
	n, err := strconv.Atoi(inner)
	if err != nil || n < 0 {
		return 0, step{}, fmt.Errorf("field path %q: want [N], [field=value] or [\"key\"], got [%s]", s, inner)
	}
	return i + end + 1, step{kind: stepIndex, index: n}, nil
}

// Get reads the path from obj: a typed object (a pointer to a struct with
// JSON tags), *unstructured.Unstructured or map[string]any. ok is false
// when a field on the way is missing, nil, or zero and omitted from JSON
// (omitempty), as it would be missing from the object the API serves.
func (p *Path) Get(obj any) (v any, ok bool) {
	if u, isU := obj.(*unstructured.Unstructured); isU {
		if u == nil {
			return nil, false
		}
		obj = u.Object
	}
	if m, isMap := obj.(map[string]any); isMap {
		return getJSON(m, p.steps)
	}
	rv, ok := p.getTyped(reflect.ValueOf(obj))
	if !ok {
		return nil, false
	}
	return rv.Interface(), true
}

// Canonical reads the path from obj and returns the value as compact JSON
// text (CanonicalJSON); ok is false when it is missing.
func (p *Path) Canonical(obj any) (string, bool) {
	if u, isU := obj.(*unstructured.Unstructured); isU {
		if u == nil {
			return "", false
		}
		obj = u.Object
	}
	if m, isMap := obj.(map[string]any); isMap {
		v, ok := getJSON(m, p.steps)
		if !ok {
			return "", false
		}
		return CanonicalJSON(v), true
	}
	rv := reflect.ValueOf(obj)
	var ok bool
	if pl := p.planFor(rv.Type()); pl.ok {
		if pl.fast.ok {
			if v, ok := pl.fast.read(rv.UnsafePointer()); ok {
				return v, true
			}
		}
		rv, ok = pl.get(rv)
	} else {
		rv, ok = p.getTyped(rv)
	}
	if !ok {
		return "", false
	}
	return canonicalValue(rv), true
}

// planFor returns the path compiled for t, compiling it when t is not the
// type it was last compiled for.
func (p *Path) planFor(t reflect.Type) *typedPlan {
	if pl := p.plan.Load(); pl != nil && pl.t == t {
		return pl
	}
	pl := compilePlan(t, p.steps)
	p.plan.Store(pl)
	return pl
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func compilePlan(t reflect.Type, steps []step) *typedPlan {
	pl := &typedPlan{t: t}
	cur := derefType(t)
	for _, s := range steps {
		ps := planStep{kind: s.kind, list: s.index, value: s.value}
		switch s.kind {
		case stepKey:
			switch cur.Kind() {
			case reflect.Struct:
				f, ok := fieldsOf(cur)[s.name]
				if !ok {
					return pl // the field does not exist: walk by name (missing)
				}
				ps.index, ps.omitEmpty, ps.isStruct = f.index, f.omitEmpty, true
				ft, ok := fieldType(cur, f.index)
				if !ok {
					return pl
				}
				cur = derefType(ft)
			case reflect.Map:
				if cur.Key().Kind() != reflect.String {
					return pl
				}
				ps.key = reflect.ValueOf(s.name).Convert(cur.Key())
				cur = derefType(cur.Elem())
			default:
				return pl
			}
		case stepIndex:
			if cur.Kind() != reflect.Slice && cur.Kind() != reflect.Array {
				return pl
			}
			cur = derefType(cur.Elem())
		case stepSelect:
			if cur.Kind() != reflect.Slice && cur.Kind() != reflect.Array {
				return pl
			}
			elem := derefType(cur.Elem())
			if elem.Kind() != reflect.Struct {
				return pl
			}
			f, ok := fieldsOf(elem)[s.name]
			if !ok {
				return pl
			}
			ft, ok := fieldType(elem, f.index)
			if !ok || len(f.index) != 1 {
				return pl
			}
			ps.sel, ps.selString = f.index, ft.Kind() == reflect.String
			cur = elem
		}
		if cur.Kind() == reflect.Interface {
			return pl
		}
		pl.steps = append(pl.steps, ps)
	}
	pl.ok = true
	pl.fast = compileFast(t, steps)
	return pl
}

// fastKinds are the value kinds fastPlan reads.
var fastKinds = map[reflect.Kind]bool{reflect.Int32: true, reflect.Int64: true, reflect.Int: true, reflect.String: true, reflect.Bool: true}

// compileFast resolves a path to offsets when every step is a struct
// field held by value from the object's pointer on (and at most one
// select over a list of structs), ending at a scalar.
func compileFast(t reflect.Type, steps []step) fastPlan {
	var f fastPlan
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return f
	}
	cur := t.Elem()
	var off uintptr
	inElem := false
	for _, s := range steps {
		switch s.kind {
		case stepKey:
			if cur.Kind() != reflect.Struct {
				return fastPlan{}
			}
			fi, ok := fieldsOf(cur)[s.name]
			if !ok {
				return fastPlan{}
			}
			for _, x := range fi.index {
				if cur.Kind() != reflect.Struct {
					return fastPlan{}
				}
				sf := cur.Field(x)
				off += sf.Offset
				cur = sf.Type
			}
		case stepSelect:
			if f.sel || cur.Kind() != reflect.Slice || cur.Elem().Kind() != reflect.Struct {
				return fastPlan{}
			}
			elem := cur.Elem()
			fi, ok := fieldsOf(elem)[s.name]
			if !ok || len(fi.index) != 1 || elem.Field(fi.index[0]).Type.Kind() != reflect.String {
				return fastPlan{}
			}
			f.sel, f.off, f.elemSize = true, off, elem.Size()
			f.selOff, f.selValue = elem.Field(fi.index[0]).Offset, s.value
			off, cur, inElem = 0, elem, true
		default:
			return fastPlan{}
		}
	}
	if !fastKinds[cur.Kind()] {
		return fastPlan{}
	}
	if inElem {
		f.restOff = off
	} else {
		f.off = off
	}
	f.kind, f.ok = cur.Kind(), true
	return f
}

// read reads the value at base; ok is false when it is zero (or the
// select matches nothing): the caller then asks the reflective plan.
func (f *fastPlan) read(base unsafe.Pointer) (string, bool) {
	if base == nil {
		return "", false
	}
	p := unsafe.Add(base, f.off)
	if f.sel {
		list := *(*[]byte)(p) // a slice header: only its data pointer and length are read
		data, n := unsafe.Pointer(unsafe.SliceData(list)), len(list)
		p = nil
		for i := 0; i < n; i++ {
			e := unsafe.Add(data, uintptr(i)*f.elemSize)
			if *(*string)(unsafe.Add(e, f.selOff)) == f.selValue {
				p = unsafe.Add(e, f.restOff)
				break
			}
		}
		if p == nil {
			return "", false
		}
	}
	switch f.kind {
	case reflect.Int32:
		if v := *(*int32)(p); v != 0 {
			return strconv.FormatInt(int64(v), 10), true
		}
	case reflect.Int64:
		if v := *(*int64)(p); v != 0 {
			return strconv.FormatInt(v, 10), true
		}
	case reflect.Int:
		if v := *(*int)(p); v != 0 {
			return strconv.Itoa(v), true
		}
	case reflect.String:
		if v := *(*string)(p); v != "" {
			return quoteString(v), true
		}
	case reflect.Bool:
		if *(*bool)(p) {
			return "true", true
		}
	}
	return "", false
}

// fieldType is the type of the field at index, through embedded structs;
// false when an embedded pointer is on the way (its value may be nil: the
// plan walks by name then).
func fieldType(t reflect.Type, index []int) (reflect.Type, bool) {
	for i, x := range index {
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		ft := t.Field(x).Type
		if i < len(index)-1 && ft.Kind() == reflect.Pointer {
			return nil, false
		}
		t = ft
	}
	return t, true
}

// get reads the planned path from v (of the plan's type). A struct
// field with omitempty is missing only when it is zero, which only
// matters when what the path reads is zero too: that is checked last, on
// the few values it concerns, rather than on every struct on the way
// (metadata, status) at every read.
func (pl *typedPlan) get(v reflect.Value) (reflect.Value, bool) {
	var omit [8]reflect.Value // omitempty structs on the way
	nomit := 0
	for i := range pl.steps {
		s := &pl.steps[i]
		v = deref(v)
		if !v.IsValid() {
			return v, false
		}
		switch s.kind {
		case stepKey:
			if s.isStruct {
				if len(s.index) == 1 {
					v = v.Field(s.index[0])
				} else {
					v = v.FieldByIndex(s.index) // embedded values only (fieldType)
				}
				if s.omitEmpty {
					if v.Kind() == reflect.Struct && nomit < len(omit) {
						omit[nomit] = v
						nomit++
					} else if v.IsZero() {
						return reflect.Value{}, false
					}
				}
			} else {
				v = v.MapIndex(s.key)
			}
		case stepIndex:
			if s.list >= v.Len() {
				return reflect.Value{}, false
			}
			v = v.Index(s.list)
		case stepSelect:
			found := false
			for j := 0; j < v.Len(); j++ {
				e := deref(v.Index(j))
				if !e.IsValid() {
					continue
				}
				f := e.Field(s.sel[0])
				if s.selString && f.String() == s.value || !s.selString && strings.Trim(canonicalValue(f), `"`) == s.value {
					v, found = e, true
					break
				}
			}
			if !found {
				return reflect.Value{}, false
			}
		}
	}
	v = deref(v)
	if !v.IsValid() {
		return v, false
	}
	if (v.Kind() == reflect.Map || v.Kind() == reflect.Slice) && v.IsNil() {
		return v, false
	}
	if nomit > 0 && v.IsZero() {
		for _, o := range omit[:nomit] {
			if o.IsZero() {
				return reflect.Value{}, false
			}
		}
	}
	return v, true
}

func getJSON(v any, steps []step) (any, bool) {
	for _, s := range steps {
		switch s.kind {
		case stepKey:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[s.name]; !ok {
				return nil, false
			}
		case stepIndex:
			l, ok := v.([]any)
			if !ok || s.index >= len(l) {
				return nil, false
			}
			v = l[s.index]
		case stepSelect:
			l, ok := v.([]any)
			if !ok {
				return nil, false
			}
			found := false
			for _, e := range l {
				if m, ok := e.(map[string]any); ok && scalarText(m[s.name]) == s.value {
					v, found = e, true
					break
				}
			}
			if !found {
				return nil, false
			}
		}
		if v == nil {
			return nil, false
		}
	}
	return v, true
}

// scalarText is a JSON scalar as written in a [field=value] selector.
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return strings.Trim(CanonicalJSON(v), `"`)
}

func (p *Path) getTyped(v reflect.Value) (reflect.Value, bool) {
	for _, s := range p.steps {
		v = deref(v)
		if !v.IsValid() {
			return v, false
		}
		switch s.kind {
		case stepKey:
			switch v.Kind() {
			case reflect.Struct:
				f, ok := fieldsOf(v.Type())[s.name]
				if !ok {
					return reflect.Value{}, false
				}
				v = v.FieldByIndex(f.index)
				if f.omitEmpty && v.IsZero() {
					return reflect.Value{}, false
				}
			case reflect.Map:
				if v.Type().Key().Kind() != reflect.String {
					return reflect.Value{}, false
				}
				v = v.MapIndex(reflect.ValueOf(s.name).Convert(v.Type().Key()))
			default:
				return reflect.Value{}, false
			}
		case stepIndex:
			if v.Kind() != reflect.Slice && v.Kind() != reflect.Array || s.index >= v.Len() {
				return reflect.Value{}, false
			}
			v = v.Index(s.index)
		case stepSelect:
			if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
				return reflect.Value{}, false
			}
			found := false
			for i := 0; i < v.Len(); i++ {
				e := deref(v.Index(i))
				if e.Kind() != reflect.Struct {
					continue
				}
				f, ok := fieldsOf(e.Type())[s.name]
				if !ok {
					continue
				}
				if strings.Trim(canonicalValue(e.FieldByIndex(f.index)), `"`) == s.value {
					v, found = e, true
					break
				}
			}
			if !found {
				return reflect.Value{}, false
			}
		}
	}
	v = deref(v)
	if !v.IsValid() {
		return v, false
	}
	if (v.Kind() == reflect.Map || v.Kind() == reflect.Slice) && v.IsNil() {
		return v, false
	}
	return v, true
}

func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

type fieldInfo struct {
	index     []int
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> map[string]fieldInfo

// fieldsOf maps the JSON names of a struct's fields, with embedded
// structs inlined as encoding/json does.
func fieldsOf(t reflect.Type) map[string]fieldInfo {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]fieldInfo)
	}
	m := map[string]fieldInfo{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
				walk(ft, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := m[name]; !dup {
				m[name] = fieldInfo{index: idx, omitEmpty: strings.Contains(opts, "omitempty")}
			}
		}
	}
	walk(t, nil)
	fieldCache.Store(t, m)
	return m
}

func quoteString(s string) string {
	switch s { // common values: no allocation
	case "True":
		return `"True"`
	case "False":
		return `"False"`
	case "Unknown":
		return `"Unknown"`
	case "":
		return `""`
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return string(b)
		}
	}
	return `"` + s + `"`
}

// CanonicalJSON writes a JSON-compatible value as compact JSON text, the
// form property values take in the history: numbers that are whole are
// written as integers (so 3 and 3.0 compare equal), object keys sorted.
func CanonicalJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return quoteString(x)
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return formatFloat(f)
		}
		return string(x)
	}
	return canonicalValue(reflect.ValueOf(v))
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func canonicalValue(v reflect.Value) string {
	v = deref(v)
	if !v.IsValid() {
		return "null"
	}
	switch v.Kind() {
	case reflect.String:
		return quoteString(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return formatFloat(v.Float())
	}
	// Structs (times, quantities), maps and lists: as the API writes them,
	// then normalised through a generic decode (sorted keys, whole numbers).
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return "null"
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		return string(b)
	}
	return canonicalGeneric(g)
}

func canonicalGeneric(v any) string {
	switch x := v.(type) {
	case map[string]any:
		b, _ := json.Marshal(normalize(x))
		return string(b)
	case []any:
		b, _ := json.Marshal(normalize(x))
		return string(b)
	}
	return CanonicalJSON(v)
}

// normalize turns whole floats into integers, recursively, so that
// encoding/json writes them as CanonicalJSON does.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	return v
}

// ParseJSON reads a JSON value written in a declaration (a default), in
// canonical form.
func ParseJSON(s string) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%q is not a JSON value (write strings quoted: '\"True\"')", s)
	}
	if dec.More() {
		return "", fmt.Errorf("%q is more than one JSON value", s)
	}
	return canonicalGeneric(numbersToFloat(v)), nil
}

func numbersToFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbersToFloat(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbersToFloat(e)
		}
	}
	return v
}

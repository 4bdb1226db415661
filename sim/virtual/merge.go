package virtual

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// mergePatchInto applies a JSON merge patch (RFC 7386) directly to a typed
// object, with the result of encoding the object to JSON, patching that
// and decoding it again: an object in the patch merges into a struct or
// map field, null removes a field (zeroes it), anything else replaces the
// field (arrays wholesale) by decoding into a fresh value. Values whose
// type decodes itself (metav1.Time, resource.Quantity, ...) are always
// replaced. Unknown fields are dropped, as decoding would. It is the hot
// path of every patch: one pass over the patch instead of four JSON passes
// over the object.
func mergePatchInto(obj any, patch []byte) error {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		harnessBug("mergePatchInto needs a non-nil pointer, got %T", obj)
	}
	if !json.Valid(patch) {
		return fmt.Errorf("invalid merge patch: not JSON")
	}
	if p := trimSpace(patch); len(p) == 0 || p[0] != '{' {
		return fmt.Errorf("invalid merge patch: not a JSON object")
	}
	return mergeRaw(v.Elem(), patch)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for n := len(b); n > 0 && (b[n-1] == ' ' || b[n-1] == '\t' || b[n-1] == '\n' || b[n-1] == '\r'); n = len(b) {
		b = b[:n-1]
	}
	return b
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	selfDecoding    sync.Map // reflect.Type -> bool
)

func decodesItself(t reflect.Type) bool {
	if v, ok := selfDecoding.Load(t); ok {
		return v.(bool)
	}
	pt := reflect.PointerTo(t)
	b := pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler)
	selfDecoding.Store(t, b)
	return b
}

// mergeRaw merges the JSON value raw into the addressable value v.
func mergeRaw(v reflect.Value, raw []byte) error {
	raw = trimSpace(raw)
	if string(raw) == "null" {
		v.SetZero()
		return nil
	}
	t := v.Type()
	if len(raw) == 0 || raw[0] != '{' || decodesItself(t) {
		return replace(v, raw)
	}
	switch {
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && !decodesItself(t.Elem()):
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return mergeRaw(v.Elem(), raw)
	case t.Kind() == reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		fields := fieldsOf(t)
		for _, name := range sortedKeys(obj) {
			idx, ok := fields[name]
			if !ok {
				continue // unknown field: dropped, as decoding would
			}
			f, err := v.FieldByIndexErr(idx)
			if err != nil { // nil embedded pointer: not used by the modelled types
				return err
			}
			if err := mergeRaw(f, obj[name]); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		// The caller merges into a deep copy: maps are not shared.
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(obj)))
		}
		for _, k := range sortedKeys(obj) {
			pv := trimSpace(obj[k])
			key := reflect.ValueOf(k).Convert(t.Key())
			if string(pv) == "null" {
				v.SetMapIndex(key, reflect.Value{})
				continue
			}
			elem := reflect.New(t.Elem()).Elem()
			if old := v.MapIndex(key); old.IsValid() && len(pv) > 0 && pv[0] == '{' {
				elem.Set(old)
			}
			if err := mergeRaw(elem, pv); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			v.SetMapIndex(key, elem)
		}
		return nil
	default:
		return replace(v, raw)
	}
}

// replace sets v to the decoding of raw into a fresh value of v's type.
func replace(v reflect.Value, raw []byte) error {
	fresh := reflect.New(v.Type())
	if err := json.Unmarshal(raw, fresh.Interface()); err != nil {
		return err
	}
	v.Set(fresh.Elem())
	return nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var fieldCache sync.Map // reflect.Type -> map[string][]int

// fieldsOf maps the JSON names of a struct's fields to their index paths,
// following inline (embedded, untagged or ",inline") fields.
func fieldsOf(t reflect.Type) map[string][]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	collectFields(t, nil, m)
	fieldCache.Store(t, m)
	return m
}

func collectFields(t reflect.Type, prefix []int, m map[string][]int) {
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(append([]int(nil), prefix...), i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(","+opts+",", ",inline,") || (f.Anonymous && name == "")
		if inline && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, idx, m)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = idx
		}
	}
}

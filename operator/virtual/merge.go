package virtual

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	sigsjson "sigs.k8s.io/json"
)

// mergePatchInto applies a JSON merge patch (RFC 7386) directly to a typed
// object, with the result of encoding the object to JSON, patching that
// and decoding it again: an object in the patch merges into a struct or
// map field, null removes a field (zeroes it), anything else replaces the
// field (arrays wholesale) by decoding into a fresh value. Values whose
// type decodes itself (metav1.Time, resource.Quantity, ...) are always
// replaced. Field names match case-sensitively and unknown fields are
// dropped, as when kube-apiserver decodes (sigs.k8s.io/json). It is the hot
// path of every patch: one pass over the patch instead of four JSON passes
// over the object.
//
// It never writes into a map or a pointed-to value that obj shares: a map
// it changes is cloned first, a pointer it descends through is pointed at
// a copy first. So obj may be a shallow copy of an object that must not
// change (the store's).
func mergePatchInto(obj any, patch []byte) error {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		harnessBug("mergePatchInto needs a non-nil pointer, got %T", obj)
	}
	if !validJSON(patch) {
		return fmt.Errorf("invalid merge patch: not JSON")
	}
	if p := trimSpace(patch); len(p) == 0 || p[0] != '{' {
		return fmt.Errorf("invalid merge patch: not a JSON object")
	}
	return mergeRaw(v.Elem(), patch)
}

// validJSON is json.Valid, in one pass without a state machine per
// byte: every patch is checked before it is applied.
func validJSON(b []byte) bool {
	i, ok := validValue(b, skipSpace(b, 0), 0)
	return ok && skipSpace(b, i) == len(b)
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// validValue checks the JSON value at b[i] and returns the index past it.
func validValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return i, false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				if i, ok = validString(b, i); !ok {
					return i, false
				}
				if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = skipSpace(b, i+1)
			}
			if i, ok = validValue(b, i, depth+1); !ok {
				return i, false
			}
			if i = skipSpace(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case end:
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '"':
		return validString(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return validNumber(b, i)
	case c == 't':
		return validLiteral(b, i, "true")
	case c == 'f':
		return validLiteral(b, i, "false")
	case c == 'n':
		return validLiteral(b, i, "null")
	}
	return i, false
}

func validLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// validString checks the string at b[i] ('"'): no control characters,
// only JSON's escapes. Other bytes pass, as in encoding/json.
func validString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// validNumber checks the number at b[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte, i int) (int, bool) {
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return i, false
		}
	}
	return i, true
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
		own := reflect.New(t.Elem()) // copy on write: the pointee may be shared
		if !v.IsNil() {
			own.Elem().Set(v.Elem())
		}
		v.Set(own)
		return mergeRaw(v.Elem(), raw)
	case t.Kind() == reflect.Struct:
		fields := fieldsOf(t)
		return eachMember(raw, func(name, val []byte) error {
			idx, ok := fields[string(name)] // no allocation for a lookup
			if !ok {
				return nil // unknown field: dropped, as decoding would
			}
			f, err := v.FieldByIndexErr(idx)
			if err != nil { // nil embedded pointer: not used by the modelled types
				return err
			}
			if err := mergeRaw(f, val); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	case t == stringMapType && v.CanInterface():
		return mergeStringMap(v, raw)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		// Copy on write: the map may be shared.
		own := reflect.MakeMapWithSize(t, v.Len()+1)
		for it := v.MapRange(); it.Next(); {
			own.SetMapIndex(it.Key(), it.Value())
		}
		v.Set(own)
		return eachMember(raw, func(k, val []byte) error {
			key := reflect.ValueOf(string(k)).Convert(t.Key())
			if string(val) == "null" {
				v.SetMapIndex(key, reflect.Value{})
				return nil
			}
			elem := reflect.New(t.Elem()).Elem()
			if old := v.MapIndex(key); old.IsValid() && val[0] == '{' {
				elem.Set(old)
			}
			if err := mergeRaw(elem, val); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			v.SetMapIndex(key, elem)
			return nil
		})
	default:
		return replace(v, raw)
	}
}

var stringMapType = reflect.TypeFor[map[string]string]()

// mergeStringMap is mergeRaw's map case for map[string]string (labels,
// annotations), without reflection for each member: the same copy on
// write, the same deletions, the same values and errors.
func mergeStringMap(v reflect.Value, raw []byte) error {
	old := v.Interface().(map[string]string)
	own := make(map[string]string, len(old)+1)
	for k, s := range old {
		own[k] = s
	}
	v.Set(reflect.ValueOf(own))
	return eachMember(raw, func(k, val []byte) error {
		if string(val) == "null" {
			delete(own, string(k))
			return nil
		}
		var s string
		if sv := reflect.ValueOf(&s).Elem(); !setScalar(sv, val) {
			if err := mergeRaw(sv, val); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		own[string(k)] = s
		return nil
	})
}

// replace sets v to the decoding of raw into a fresh value of v's type,
// with field names matched case-sensitively, as kube-apiserver decodes.
func replace(v reflect.Value, raw []byte) error {
	if !decodesItself(v.Type()) && setScalar(v, raw) {
		return nil
	}
	fresh := reflect.New(v.Type())
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, fresh.Interface()); err != nil {
		return err
	}
	v.Set(fresh.Elem())
	return nil
}

// setScalar sets v to the JSON scalar raw and reports true when raw is
// a string without escapes into a string kind, an integer that fits into
// an int kind, or a boolean into a bool kind, which it decodes as
// encoding/json does; for anything else it reports false and the caller
// decodes raw.
func setScalar(v reflect.Value, raw []byte) bool {
	switch v.Kind() {
	case reflect.String:
		if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
			return false
		}
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
			return false
		}
		v.SetString(string(s))
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		for _, b := range raw {
			if (b < '0' || b > '9') && b != '-' {
				return false
			}
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
		return true
	case reflect.Bool:
		switch string(raw) {
		case "true":
			v.SetBool(true)
			return true
		case "false":
			v.SetBool(false)
			return true
		}
	}
	return false
}

type member struct {
	key, val []byte
}

// eachMember calls fn with each member of the JSON object raw, in document
// order; of a repeated key only the last member counts, as when decoding.
// raw must be valid JSON: mergePatchInto checks the whole patch first.
//
// key is the member's name, unescaped; it may alias raw.
func eachMember(raw []byte, fn func(key, val []byte) error) error {
	var buf [8]member
	ms := buf[:0]
	i := skipSpace(raw, 1) // past '{'
	for i < len(raw) && raw[i] != '}' {
		ks := i
		i = skipString(raw, i)
		key := raw[ks+1 : i-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var dec string
			if err := json.Unmarshal(raw[ks:i], &dec); err != nil {
				return err
			}
			key = []byte(dec)
		}
		i = skipSpace(raw, skipSpace(raw, i)+1) // past ':'
		vs := i
		i = skipValue(raw, i)
		ms = append(ms, member{key, raw[vs:i]})
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
next:
	for j, m := range ms {
		for _, later := range ms[j+1:] {
			if bytes.Equal(later.key, m.key) {
				continue next
			}
		}
		if err := fn(m.key, m.val); err != nil {
			return err
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && !bytes.ContainsRune([]byte(",}] \t\n\r"), rune(b[i])) {
			i++
		}
		return i
	}
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

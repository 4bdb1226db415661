package scenarios

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is a problem with one field of a scenario file.
type FieldError struct {
	File  string // file name as given to Load
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted path, e.g. "workload.scale.every"
	Msg   string
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// Duration is a time.Duration written as a Go duration string ("150ms", "2s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

var durationType = reflect.TypeOf(Duration{})

// decoder decodes a yaml.Node tree into Go values strictly, keeping the
// field path so that every error names file, line and field.
type decoder struct {
	file string
	// present collects the field paths the file sets (to a non-null
	// value), so that a zero it wrote is not taken for a field left out.
	present map[string]bool
}

// renamed says what a field of an earlier version of the format is called
// now ("" when it is not one).
func renamed(path, key string) string {
	switch {
	case path == "workload" && key == "clusters":
		return "workload.objects"
	case path == "workload" && key == "deleteClusters":
		return "workload.deleteObjects"
	case strings.HasPrefix(path, "workload.operations[") && key == "cluster":
		return path + ".name"
	}
	return ""
}

func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &FieldError{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// yamlName returns the YAML key of a struct field and whether it is decoded.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = strings.ToLower(f.Name[:1]) + f.Name[1:]
	}
	return name, true
}

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) error {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return d.decode(n.Content[0], path, v)
	}
	if n.Kind == yaml.AliasNode {
		return d.decode(n.Alias, path, v)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // leave the zero value: the default applies
	}
	if d.present != nil && path != "" && !strings.HasPrefix(path, "workload.operations[") {
		// (Nothing in an explicit operation has a default to tell a zero
		// from: a path per field of 80,000 operations would be 40 MB.)
		d.present[path] = true
	}
	if v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String {
		return d.decodeMap(n, path, v)
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "want a duration such as 500ms or 2s, got a %s", kindName(n))
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			return d.errf(n, path, "invalid duration %q (want e.g. 500ms, 2s, 1m30s)", n.Value)
		}
		v.Set(reflect.ValueOf(Duration{dur}))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		if err := d.decode(n, path, nv.Elem()); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.errf(n, path, "want a mapping, got a %s", kindName(n))
		}
		t := v.Type()
		fields := map[string]int{}
		var known []string
		for i := 0; i < t.NumField(); i++ {
			if name, ok := yamlName(t.Field(i)); ok {
				fields[name] = i
				known = append(known, name)
			}
		}
		sort.Strings(known)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				if now := renamed(path, k.Value); now != "" {
					return d.errf(k, fp, "renamed to %s (the workload acts on objects of any kind now)", now)
				}
				return d.errf(k, fp, "unknown field (known fields: %s)", strings.Join(known, ", "))
			}
			if seen[k.Value] {
				return d.errf(k, fp, "field given twice")
			}
			seen[k.Value] = true
			if err := d.decode(val, fp, v.Field(idx)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errf(n, path, "want a list, got a %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, path, "want a %s, got a %s", v.Kind(), kindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			return d.errf(n, path, "want a string, got %s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			return d.errf(n, path, "want true or false, got %q", n.Value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			return d.errf(n, path, "want an integer, got %q", n.Value)
		}
		v.SetInt(i)
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		i, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			return d.errf(n, path, "want a non-negative integer, got %q", n.Value)
		}
		v.SetUint(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || (n.Tag != "!!float" && n.Tag != "!!int") {
			if n.Tag == "!!float" {
				return d.errf(n, path, "want a finite number, got %q", n.Value)
			}
			return d.errf(n, path, "want a number, got %q", n.Value)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return d.errf(n, path, "want a finite number, got %q", n.Value)
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("driftlab-harness-bug: scenario decoder cannot decode %s", v.Type()))
	}
	return nil
}

// decodeMap decodes a mapping into a map with string keys: labels and
// environment variables (string values) or an object (any JSON value).
func (d *decoder) decodeMap(n *yaml.Node, path string, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "want a mapping, got a %s", kindName(n))
	}
	if v.Type().Elem().Kind() == reflect.Interface {
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return d.errf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if err := checkJSON(m, path); err != nil {
			return d.errf(n, err.path, "%s", err.msg)
		}
		v.Set(reflect.ValueOf(m).Convert(v.Type()))
		return nil
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			return d.errf(k, path, "want a string key, got a %s", kindName(k))
		}
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			return d.errf(k, fp, "key given twice")
		}
		ev := reflect.New(v.Type().Elem()).Elem()
		if ev.Kind() == reflect.String && val.Kind == yaml.ScalarNode && val.Tag != "!!str" && val.Tag != "!!null" {
			return d.errf(val, fp, "want a string, got %s %q (quote it)", strings.TrimPrefix(val.Tag, "!!"), val.Value)
		}
		if err := d.decode(val, fp, ev); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
	}
	v.Set(m)
	return nil
}

type jsonErr struct{ path, msg string }

// checkJSON refuses what JSON cannot carry: non-string keys, NaN and
// infinities.
func checkJSON(v any, path string) *jsonErr {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if err := checkJSON(e, join(path, k)); err != nil {
				return err
			}
		}
	case map[any]any:
		return &jsonErr{path, "a mapping with a key that is not a string"}
	case []any:
		for i, e := range x {
			if err := checkJSON(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return &jsonErr{path, fmt.Sprintf("want a finite number, got %v", x)}
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return strings.TrimPrefix(n.Tag, "!!") + " " + strconv.Quote(n.Value)
	}
	return "node"
}

// lineOf finds the line of the value at a dotted field path ("a.b[2].c"),
// for validation errors found after decoding. It returns 0 when the path is
// not in the file (a default applies).
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n == nil {
		return 0
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == name {
					next = n.Content[i+1]
				}
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

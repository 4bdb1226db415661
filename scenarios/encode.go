package scenarios

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Encode writes a scenario as YAML that Parse (and so Load) reads back as
// the same scenario. Fields are written in the order of the Go types, with
// their YAML names; small mappings (ranges, distributions, thresholds) are
// written in flow style, as in the built-in files. A field whose JSON tag
// has omitempty is left out when it is zero; every other field is written,
// so the file shows every value the run used.
//
// A fault is written from the fault table: its type, its schedule (start or
// afterOps, duration) and the non-zero parameters that FaultTypes lists for
// its type, so a fault type added to the table needs no change here. A fault
// of an unknown type, or with a parameter of another type set, is an error,
// as it is on load.
//
// Encode checks its own output: it parses it and encodes the result again,
// and returns an error when the two differ, which happens when a value
// cannot be written because loading replaces it by a default.
func Encode(s *Scenario) ([]byte, error) {
	out, err := encodeOnce(s)
	if err != nil {
		return nil, err
	}
	back, err := Parse(s.Name+".yaml", out)
	if err != nil {
		return nil, fmt.Errorf("scenarios: encoding %s produced a file that does not load: %w", s.Name, err)
	}
	again, err := encodeOnce(back)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(out, again) {
		return nil, fmt.Errorf("scenarios: %s cannot be written as YAML: %s", s.Name, firstDiff(out, again))
	}
	return out, nil
}

// firstDiff names the first line where two encodings differ.
func firstDiff(want, got []byte) string {
	a, b := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("%q loads as %q (a default replaces the value)", strings.TrimSpace(a[i]), strings.TrimSpace(b[i]))
		}
	}
	return "the file loads as a different scenario"
}

func encodeOnce(s *Scenario) ([]byte, error) {
	root, err := encodeStruct(reflect.ValueOf(s).Elem(), "")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("scenarios: encoding %s: %w", s.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var faultsType = reflect.TypeOf([]Fault(nil))

// encodeStruct writes a struct as a mapping; path is its dotted field path,
// for errors.
func encodeStruct(v reflect.Value, path string) (*yaml.Node, error) {
	t := v.Type()
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if isLeaf(t) || leafValue(v) {
		m.Style = yaml.FlowStyle
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := yamlName(f)
		if !ok {
			continue
		}
		fv := v.Field(i)
		fp := join(path, name)
		var val *yaml.Node
		var err error
		switch {
		case f.Type == faultsType:
			val, err = encodeFaults(fv.Interface().([]Fault), fp)
		case fv.IsZero() && omitEmpty(f):
			continue
		default:
			val, err = encodeValue(fv, fp)
		}
		if err != nil {
			return nil, err
		}
		m.Content = append(m.Content, scalar("!!str", name), val)
	}
	return m, nil
}

// isLeaf reports whether a struct has only scalar fields (a range, a
// distribution, thresholds): it is written in flow style.
func isLeaf(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		ft := t.Field(i).Type
		if ft != durationType && (ft.Kind() == reflect.Struct || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map) {
			return false
		}
	}
	return true
}

// leafValue reports whether a struct value writes only scalars: its
// other fields are empty and left out (an explicit operation without a
// patch).
func leafValue(v reflect.Value) bool {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, ok := yamlName(f); !ok {
			continue
		}
		ft := f.Type
		if ft != durationType && (ft.Kind() == reflect.Struct || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map || ft.Kind() == reflect.Pointer) &&
			!(v.Field(i).IsZero() && omitEmpty(f)) {
			return false
		}
	}
	return true
}

func omitEmpty(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
	return strings.Contains(opts, "omitempty")
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func encodeValue(v reflect.Value, path string) (*yaml.Node, error) {
	if v.Type() == durationType {
		return scalar("!!str", v.Interface().(Duration).String()), nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return scalar("!!null", "null"), nil
		}
		return encodeValue(v.Elem(), path)
	case reflect.Map:
		return encodeMap(v, path)
	case reflect.Struct:
		return encodeStruct(v, path)
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for i := 0; i < v.Len(); i++ {
			item, err := encodeValue(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if item.Kind != yaml.ScalarNode {
				n.Style = 0
			}
			n.Content = append(n.Content, item)
		}
		return n, nil
	case reflect.String:
		return scalar("!!str", v.String()), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float64:
		if x := v.Float(); x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return scalar("!!int", strconv.FormatFloat(x, 'f', 0, 64)), nil // "5", as people write it
		}
		return scalar("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64)), nil
	}
	return nil, fmt.Errorf("scenarios: cannot encode %s (%s)", path, v.Type())
}

// encodeMap writes a map with string keys in key order: labels and
// variables in flow style, objects as yaml.v3 encodes them.
func encodeMap(v reflect.Value, path string) (*yaml.Node, error) {
	if v.Type().Key().Kind() != reflect.String {
		return nil, fmt.Errorf("scenarios: cannot encode %s (%s)", path, v.Type())
	}
	if v.Type().Elem().Kind() == reflect.Interface {
		n := &yaml.Node{}
		if err := n.Encode(v.Interface()); err != nil {
			return nil, fmt.Errorf("scenarios: encoding %s: %w", path, err)
		}
		return n, nil
	}
	keys := make([]string, 0, v.Len())
	for _, k := range v.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
	for _, k := range keys {
		val, err := encodeValue(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), join(path, k))
		if err != nil {
			return nil, err
		}
		m.Content = append(m.Content, scalar("!!str", k), val)
	}
	return m, nil
}

// encodeFaults writes the fault list, each fault as a flow mapping with its
// type, schedule and the parameters FaultTypes lists for its type.
func encodeFaults(fs []Fault, path string) (*yaml.Node, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if len(fs) == 0 {
		seq.Style = yaml.FlowStyle
	}
	for i := range fs {
		f := &fs[i]
		fp := fmt.Sprintf("%s[%d]", path, i)
		ft, ok := FaultTypes[f.Type]
		if !ok {
			return nil, fmt.Errorf("scenarios: %s.type: unknown fault type %q (known: %s)", fp, f.Type, strings.Join(FaultTypeNames(), ", "))
		}
		own := map[string]bool{}
		for _, p := range ft.Params {
			own[p] = true
		}
		for _, p := range f.setParams() {
			if !own[p] && !isScheduleParam(p) {
				return nil, fmt.Errorf("scenarios: %s.%s: not a parameter of %s (its parameters: %s)", fp, p, f.Type, strings.Join(ft.Params, ", "))
			}
		}
		fields := faultFields()
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		add := func(name string) error {
			val, err := encodeValue(reflect.ValueOf(f).Elem().FieldByIndex(fields[name]), fp+"."+name)
			if err != nil {
				return err
			}
			m.Content = append(m.Content, scalar("!!str", name), val)
			return nil
		}
		if err := add("type"); err != nil {
			return nil, err
		}
		if f.AfterOps > 0 {
			err := add("afterOps")
			if f.Start.Duration != 0 && err == nil {
				err = add("start") // invalid, but written as it is so that loading says so
			}
			if err != nil {
				return nil, err
			}
		} else if err := add("start"); err != nil {
			return nil, err
		}
		if f.Duration.Duration != 0 {
			if err := add("duration"); err != nil {
				return nil, err
			}
		}
		for _, p := range ft.Params {
			idx, ok := fields[p]
			if !ok {
				return nil, fmt.Errorf("scenarios: fault type %s lists parameter %q, which is not a field of Fault", f.Type, p)
			}
			if reflect.ValueOf(f).Elem().FieldByIndex(idx).IsZero() {
				continue // unset: the type's default applies on load
			}
			if err := add(p); err != nil {
				return nil, err
			}
		}
		seq.Content = append(seq.Content, m)
	}
	return seq, nil
}

func isScheduleParam(p string) bool {
	for _, s := range scheduleParams {
		if s == p {
			return true
		}
	}
	return false
}

// faultFields maps the YAML names of Fault's fields to their indexes.
func faultFields() map[string][]int {
	t := reflect.TypeOf(Fault{})
	out := make(map[string][]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if name, ok := yamlName(t.Field(i)); ok {
			out[name] = []int{i}
		}
	}
	return out
}

package promread

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text format: a metric name, its
// labels and its value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseText reads the Prometheus text exposition format (what
// kube-apiserver's /metrics serves) and returns the samples whose name
// want accepts. Comments and malformed lines are skipped: a scrape must
// not fail on one line it does not understand.
func ParseText(r io.Reader, want func(name string) bool) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			continue
		}
		name := line[:end]
		if !want(name) {
			continue
		}
		s := Sample{Name: name}
		rest := line[end:]
		if rest[0] == '{' {
			labels, n, ok := parseLabels(rest)
			if !ok {
				continue
			}
			s.Labels, rest = labels, rest[n:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		s.Value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels parses {k="v",...} at the start of s and returns the labels
// and the number of bytes read.
func parseLabels(s string) (map[string]string, int, bool) {
	labels := map[string]string{}
	i := 1
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return nil, 0, false
		}
		if s[i] == '}' {
			return labels, i + 1, true
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return nil, 0, false
		}
		key := strings.TrimSpace(s[i : i+eq])
		i += eq + 2
		var v strings.Builder
		for {
			if i >= len(s) {
				return nil, 0, false
			}
			c := s[i]
			i++
			if c == '"' {
				break
			}
			if c == '\\' && i < len(s) {
				switch s[i] {
				case 'n':
					c = '\n'
				default:
					c = s[i]
				}
				i++
			}
			v.WriteByte(c)
		}
		labels[key] = v.String()
	}
}

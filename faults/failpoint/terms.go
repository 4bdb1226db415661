package failpoint

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	pfp "github.com/pingcap/failpoint"
)

// Term is one parsed step of a failpoint term chain.
type Term struct {
	// Count is the N of an `N*` modifier (the step runs N times, then the
	// chain moves on); 0 means no limit.
	Count int
	// Action is "sleep", "off" or "return".
	Action string
	// Sleep is the duration of a sleep step.
	Sleep time.Duration
	// Value is the argument as written, without parentheses ("" if none).
	Value string
}

// ParseTerms parses and checks a failpoint term for the failpoint fp (see
// the package doc for the grammar). The error says what is wrong and what
// is accepted.
func ParseTerms(fp Info, desc string) ([]Term, error) {
	if strings.TrimSpace(desc) == "" {
		return nil, fmt.Errorf("empty term (want e.g. sleep(200), 3*sleep(\"1s\"), off)")
	}
	var out []Term
	for i, step := range strings.Split(desc, "->") {
		t, err := parseStep(fp, step)
		if err != nil {
			return nil, fmt.Errorf("term %q, step %d %q: %v", desc, i+1, step, err)
		}
		out = append(out, t)
	}
	// The grammar is gofail's and pingcap/failpoint's; make sure the
	// library that will run it agrees.
	var lib pfp.Failpoints
	if err := lib.Enable("driftlab/validate", desc); err != nil {
		return nil, fmt.Errorf("term %q: %v", desc, err)
	}
	return out, nil
}

func parseStep(fp Info, s string) (Term, error) {
	var t Term
	for {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			break
		}
		if i < len(s) && (s[i] == '%' || s[i] == '.') {
			return t, fmt.Errorf("probability modifiers (N%%) are not allowed: gofail and pingcap/failpoint draw them from the process-global math/rand, so a run would not replay from its seed; use a count N* instead")
		}
		if i >= len(s) || s[i] != '*' {
			return t, fmt.Errorf("want N* or an action after %q", s[:i])
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || n <= 0 {
			return t, fmt.Errorf("count %q must be a positive integer", s[:i])
		}
		if t.Count != 0 {
			return t, fmt.Errorf("give one count modifier per step")
		}
		t.Count = n
		s = s[i+1:]
	}
	act, arg, hasArg := s, "", false
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return t, fmt.Errorf("unbalanced parenthesis")
		}
		act, arg, hasArg = s[:i], s[i+1:len(s)-1], true
	}
	t.Action, t.Value = act, arg
	switch act {
	case "sleep":
		if !hasArg || arg == "" {
			return t, fmt.Errorf("sleep needs a duration: sleep(200) for 200 ms or sleep(\"1.5s\")")
		}
		if ms, err := strconv.Atoi(arg); err == nil {
			if ms < 0 {
				return t, fmt.Errorf("sleep(%d): negative", ms)
			}
			t.Sleep = time.Duration(ms) * time.Millisecond
		} else {
			q, err := strconv.Unquote(arg)
			if err != nil || !strings.HasPrefix(arg, `"`) {
				return t, fmt.Errorf("sleep(%s): want milliseconds (sleep(200)) or a quoted duration (sleep(\"1.5s\"))", arg)
			}
			d, err := time.ParseDuration(q)
			if err != nil || d < 0 {
				return t, fmt.Errorf("sleep(%s): invalid duration %q (want e.g. 500ms, 2s)", arg, q)
			}
			t.Sleep = d
		}
		if t.Sleep > time.Minute {
			return t, fmt.Errorf("sleep of %s: longer than a minute would outlast any scenario window", t.Sleep)
		}
	case "off":
		if hasArg && arg != "" {
			return t, fmt.Errorf("off takes no argument")
		}
	case "return":
		switch {
		case !hasArg || arg == "":
		case fp.Type == "string":
			if _, err := strconv.Unquote(arg); err != nil || !strings.HasPrefix(arg, `"`) {
				return t, fmt.Errorf("%s is a string failpoint: want return(\"message\")", fp.Name)
			}
		default:
			return t, fmt.Errorf("%s takes no value: want return or return()", fp.Name)
		}
	case "panic", "break", "print", "pause":
		return t, fmt.Errorf("%s is not allowed: it would crash, stop or write into the harness (etcd runs inside it); use sleep, off or return", act)
	default:
		return t, fmt.Errorf("unknown action %q (want sleep, off or return)", act)
	}
	return t, nil
}

// SleepOf returns the sleep of a term that is a single unbounded sleep
// step, for reporting the injected delay; 0 otherwise.
func SleepOf(terms []Term) time.Duration {
	if len(terms) == 1 && terms[0].Action == "sleep" && terms[0].Count == 0 {
		return terms[0].Sleep
	}
	return 0
}

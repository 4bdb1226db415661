// Package bugs is the table of seeded bugs the reference operator can be
// built to show. Every bug is off by default and switched on by name, from
// the operator's --bug flag or a scenario's operator.bugs list. driftlab's
// own tests switch them on to prove that an invariant fails when the operator
// is wrong (the negative control).
package bugs

import (
	"fmt"
	"sort"
	"strings"
)

// FreezeStatus makes the operator stop writing status after its first
// status write: the status then drifts from the truth for good.
const FreezeStatus = "freeze-status"

// Table describes every seeded bug, by name.
var Table = map[string]string{
	FreezeStatus: "writes status once per cluster, then never again (status freezes, drift invariant must fail)",
}

// Names lists the seeded bugs in order.
func Names() []string {
	out := make([]string, 0, len(Table))
	for n := range Table {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Set is a set of enabled bugs.
type Set map[string]bool

// Parse validates names and returns the set.
func Parse(names []string) (Set, error) {
	s := Set{}
	for _, n := range names {
		if _, ok := Table[n]; !ok {
			return nil, fmt.Errorf("unknown bug %q (known: %s)", n, strings.Join(Names(), ", "))
		}
		s[n] = true
	}
	return s, nil
}

// On reports whether a bug is enabled.
func (s Set) On(name string) bool { return s[name] }

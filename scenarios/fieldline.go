package scenarios

import (
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldErrorAt is a FieldError about a scenario that was already loaded,
// for checks made outside this package (a run directory that the name
// cannot make, for example): it names s.File and the line of field in that
// file (0 for a built-in scenario, or when the file cannot be read again).
func FieldErrorAt(s *Scenario, field, msg string) *FieldError {
	fe := &FieldError{File: s.File, Field: field, Msg: msg}
	if s.File == "" || strings.HasPrefix(s.File, "builtin:") {
		return fe
	}
	data, err := os.ReadFile(s.File)
	if err != nil {
		return fe
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) == nil {
		fe.Line = lineOf(&root, field)
	}
	return fe
}

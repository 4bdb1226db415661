package subject

import (
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// celCostLimit bounds one evaluation, so that a runaway expression (a
// comprehension over a huge list) fails instead of stalling the run.
const celCostLimit = 1_000_000

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error
)

// env is the CEL environment of truths: object (the object as JSON), truth
// (the truths of the properties declared before, by name), readyPods and
// pods (counts of the object's Pods).
func env() (*cel.Env, error) {
	celEnvOnce.Do(func() {
		celEnv, celEnvErr = cel.NewEnv(
			cel.Variable("object", cel.DynType),
			cel.Variable("truth", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("readyPods", cel.IntType),
			cel.Variable("pods", cel.IntType),
		)
	})
	return celEnv, celEnvErr
}

// celTruth is a compiled CEL truth.
type celTruth struct {
	expr string
	prg  cel.Program
	// usesObject and usesPods say which inputs the expression reads, so
	// that the tracker builds only those.
	usesObject, usesPods bool
}

// compileCEL parses and checks expr; earlier are the names truth may
// index.
func compileCEL(expr string, earlier []string) (*celTruth, error) {
	e, err := env()
	if err != nil {
		return nil, err
	}
	a, iss := e.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	known := map[string]bool{}
	for _, n := range earlier {
		known[n] = true
	}
	c := &celTruth{expr: expr}
	var bad []string
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(x ast.Expr) {
		switch x.Kind() {
		case ast.IdentKind:
			switch x.AsIdent() {
			case "object":
				c.usesObject = true
			case "readyPods", "pods":
				c.usesPods = true
			}
		case ast.SelectKind:
			s := x.AsSelect()
			if op := s.Operand(); op.Kind() == ast.IdentKind && op.AsIdent() == "truth" && !known[s.FieldName()] {
				bad = append(bad, s.FieldName())
			}
		}
	}))
	if len(bad) > 0 {
		have := "none"
		if len(earlier) > 0 {
			have = strings.Join(earlier, ", ")
		}
		return nil, fmt.Errorf("truth.%s is not a property declared before this one (declared before: %s)", bad[0], have)
	}
	prg, err := e.Program(a, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, err
	}
	c.prg = prg
	return c, nil
}

// eval runs the expression; the result is in canonical JSON.
func (c *celTruth) eval(vars map[string]any) (string, error) {
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		return "", fmt.Errorf("cel %q: %w", c.expr, err)
	}
	return celValue(out)
}

func celValue(v ref.Val) (string, error) {
	switch v.Type() {
	case types.NullType:
		return "null", nil
	case types.ErrType:
		return "", fmt.Errorf("%v", v)
	}
	return canonicalGeneric(normalizeCEL(v.Value())), nil
}

// normalizeCEL turns what ConvertToNative returns for maps and lists
// into JSON-compatible values.
func normalizeCEL(v any) any {
	switch x := v.(type) {
	case ref.Val:
		return normalizeCEL(x.Value())
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(normalizeCEL(k))] = normalizeCEL(e)
		}
		return out
	case map[ref.Val]ref.Val:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(normalizeCEL(k))] = normalizeCEL(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeCEL(e)
		}
		return out
	case []ref.Val:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeCEL(e)
		}
		return out
	case uint64:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// conditionExample is shown in every error about a condition's text.
const conditionExample = `"result < 0.05"`

// Condition decides whether a measured value is a success. Its zero value
// is unset, which Metric.Validate refuses. Build one with ParseCondition
// from text (specs, the command line) or with ConditionFunc from Go.
//
// A Condition encodes as its text (encoding.TextMarshaler), so a spec in
// JSON or YAML can hold "result <= 0.01".
type Condition struct {
	text string
	met  func(float64) bool
}

// ParseCondition parses the textual form `result <op> NUMBER`, where <op>
// is one of <, <=, >, >=, == and !=, and NUMBER is a finite decimal
// number: "result < 0.05", "result >= 99.5".
func ParseCondition(s string) (Condition, error) {
	fields := strings.Fields(s)
	if len(fields) < 3 {
		// Allow the operator written without spaces: "result<0.05".
		fields = splitCompact(strings.TrimSpace(s))
	}
	if len(fields) != 3 {
		return Condition{}, fmt.Errorf("analysis: condition %q is not of the form result <op> NUMBER; write, for example, %s", s, conditionExample)
	}
	if fields[0] != "result" {
		return Condition{}, fmt.Errorf("analysis: condition %q must start with \"result\" (the measured value), not %q; write, for example, %s", s, fields[0], conditionExample)
	}
	n, err := strconv.ParseFloat(fields[2], 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return Condition{}, fmt.Errorf("analysis: condition %q compares with %q, which is not a finite number; write, for example, %s", s, fields[2], conditionExample)
	}
	var met func(float64) bool
	switch op := fields[1]; op {
	case "<":
		met = func(v float64) bool { return v < n }
	case "<=":
		met = func(v float64) bool { return v <= n }
	case ">":
		met = func(v float64) bool { return v > n }
	case ">=":
		met = func(v float64) bool { return v >= n }
	case "==":
		met = func(v float64) bool { return v == n }
	case "!=":
		met = func(v float64) bool { return v != n }
	default:
		return Condition{}, fmt.Errorf("analysis: condition %q has the operator %q; use one of <, <=, >, >=, ==, !=, for example %s", s, op, conditionExample)
	}
	return Condition{text: "result " + fields[1] + " " + fields[2], met: met}, nil
}

// splitCompact splits "result<0.05" into its three parts, or returns nil.
func splitCompact(s string) []string {
	rest, ok := strings.CutPrefix(s, "result")
	if !ok {
		return nil
	}
	rest = strings.TrimSpace(rest)
	for _, op := range []string{"<=", ">=", "==", "!=", "<", ">"} {
		if num, ok := strings.CutPrefix(rest, op); ok && strings.TrimSpace(num) != "" {
			return []string{"result", op, strings.TrimSpace(num)}
		}
	}
	return nil
}

// ConditionFunc makes a Condition from a Go function; description is what
// results and reports show for it (for example "result < p99 of stable").
// A nil function gives an unset Condition, which Metric.Validate refuses.
func ConditionFunc(description string, met func(float64) bool) Condition {
	if met == nil {
		return Condition{}
	}
	if description == "" {
		description = "func"
	}
	return Condition{text: description, met: met}
}

// IsZero reports whether c is unset.
func (c Condition) IsZero() bool { return c.met == nil }

// Met reports whether v satisfies c; an unset Condition is never met.
func (c Condition) Met(v float64) bool { return c.met != nil && c.met(v) }

// String returns the condition's text ("result < 0.05") or the description
// given to ConditionFunc.
func (c Condition) String() string { return c.text }

// MarshalText encodes c as its text. A Condition made by ConditionFunc
// cannot be decoded again: its description is not a condition.
func (c Condition) MarshalText() ([]byte, error) { return []byte(c.text), nil }

// UnmarshalText parses text with ParseCondition.
func (c *Condition) UnmarshalText(text []byte) error {
	parsed, err := ParseCondition(string(text))
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

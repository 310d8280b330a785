package policypacks

import (
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// Unknown stands for a value the engine does not know yet (an output of
// another resource during preview).
var Unknown = unknownValue{}

type unknownValue struct{}

func (unknownValue) String() string { return "<unknown>" }

// State says whether a looked-up value is there.
type State int

// Lookup states.
const (
	// Missing: the property is not set.
	Missing State = iota
	// Known: the property has a value.
	Known
	// Unknowable: the value will only be known at update time.
	Unknowable
)

// Props are a resource's properties as plain Go values: map[string]any,
// []any, string, float64, bool, nil, and Unknown.
type Props map[string]any

// Get returns the value at a dotted path; numeric segments index lists
// ("spec.containers.0.image"). Crossing an Unknown yields Unknowable.
func (p Props) Get(path string) (any, State) {
	var cur any = map[string]any(p)
	for _, seg := range strings.Split(path, ".") {
		if cur == Unknown {
			return nil, Unknowable
		}
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, Missing
			}
			cur = v
		case Props:
			v, ok := c[seg]
			if !ok {
				return nil, Missing
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, Missing
			}
			cur = c[i]
		default:
			return nil, Missing
		}
	}
	switch {
	case cur == Unknown:
		return nil, Unknowable
	case cur == nil:
		return nil, Missing
	}
	return cur, Known
}

// String returns a string property.
func (p Props) String(path string) (string, State) {
	v, st := p.Get(path)
	s, ok := v.(string)
	if st == Known && !ok {
		return "", Missing
	}
	return s, st
}

// Bool returns a boolean property; "true"/"false" strings count (some AWS
// inputs are stringly typed).
func (p Props) Bool(path string) (bool, State) {
	v, st := p.Get(path)
	switch b := v.(type) {
	case bool:
		return b, st
	case string:
		return b == "true", st
	}
	if st == Known {
		return false, Missing
	}
	return false, st
}

// Number returns a numeric property.
func (p Props) Number(path string) (float64, State) {
	v, st := p.Get(path)
	switch n := v.(type) {
	case float64:
		return n, st
	case int:
		return float64(n), st
	}
	if st == Known {
		return 0, Missing
	}
	return 0, st
}

// List returns a list property.
func (p Props) List(path string) ([]any, State) {
	v, st := p.Get(path)
	l, ok := v.([]any)
	if st == Known && !ok {
		return nil, Missing
	}
	return l, st
}

// Map returns an object property.
func (p Props) Map(path string) (Props, State) {
	v, st := p.Get(path)
	switch m := v.(type) {
	case map[string]any:
		return Props(m), st
	case Props:
		return m, st
	}
	if st == Known {
		return nil, Missing
	}
	return nil, st
}

// Strings returns a list of strings; an unknown element makes the whole list Unknowable.
func (p Props) Strings(path string) ([]string, State) {
	l, st := p.List(path)
	if st != Known {
		return nil, st
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		if e == Unknown {
			return nil, Unknowable
		}
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out, Known
}

// FromPropertyMap converts the engine's property values (as policyx hands
// them to analyzers) to Props; computed values become Unknown and secrets
// are unwrapped.
func FromPropertyMap(m property.Map) Props {
	out := make(Props, m.Len())
	for k, v := range m.All {
		out[k] = fromValue(v)
	}
	return out
}

func fromValue(v property.Value) any {
	switch {
	case v.IsComputed():
		return Unknown
	case v.IsNull():
		return nil
	case v.IsBool():
		return v.AsBool()
	case v.IsNumber():
		return v.AsNumber()
	case v.IsString():
		return v.AsString()
	case v.IsArray():
		arr := v.AsArray().AsSlice()
		out := make([]any, len(arr))
		for i, e := range arr {
			out[i] = fromValue(e)
		}
		return out
	case v.IsMap():
		return map[string]any(FromPropertyMap(v.AsMap()))
	case v.IsResourceReference():
		return string(v.AsResourceReference().URN)
	}
	return nil
}

// FromPlain converts JSON-like values (for example the inputs of a preview
// event or a state file) to Props; the engine's unknown sentinel string
// becomes Unknown.
func FromPlain(m map[string]any) Props {
	out := make(Props, len(m))
	for k, v := range m {
		out[k] = fromPlain(v)
	}
	return out
}

// unknownSentinel is how the engine serialises an unknown value in JSON.
const unknownSentinel = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

func fromPlain(v any) any {
	switch t := v.(type) {
	case string:
		if t == unknownSentinel {
			return Unknown
		}
		return t
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = fromPlain(e)
		}
		return out
	case map[string]any:
		if sig, ok := t["4dabf18193072939515e22adb298388d"]; ok && sig == "1b47061264138c4ac30d75fd1eb44270" {
			return fromPlain(t["value"]) // a secret
		}
		return map[string]any(FromPlain(t))
	}
	return v
}

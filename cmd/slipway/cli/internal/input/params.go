package input

import (
	"github.com/slipwayhq/slipway/stacks"
)

// paramKind is how a parameter is given on the command line.
type paramKind int

const (
	// scalarParam takes one value (a later one wins).
	scalarParam paramKind = iota
	// mapParam takes KEY=VALUE, each adding a key.
	mapParam
	// sliceParam takes values, each appending one.
	sliceParam
)

// paramKindOf returns how the parameter at path of b is given (a path b
// does not have takes one value; Build then names it).
func paramKindOf(b stacks.Builder, path string) paramKind {
	t, err := b.ParamType(path)
	switch {
	case err != nil:
		return scalarParam
	case t == stacks.MapParam:
		return mapParam
	case t == stacks.ListParam:
		return sliceParam
	}
	return scalarParam
}

// flagType names the value type of a shorthand for path in help texts.
func flagType(b stacks.Builder, path string) string {
	t, err := b.ParamType(path)
	switch {
	case err != nil || t == stacks.JSONParam:
		return "string"
	case t.Repeated():
		return "stringArray"
	}
	return string(t)
}

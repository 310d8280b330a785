package cli

import (
	"reflect"
	"strings"
	"time"

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

// paramKindOf returns how the parameter at path of b is given.
func paramKindOf(b stacks.Builder, path string) paramKind {
	t := paramTypeOf(b, path)
	switch {
	case t == nil:
		return scalarParam
	case t.Kind() == reflect.Map:
		return mapParam
	case t.Kind() == reflect.Slice:
		return sliceParam
	}
	return scalarParam
}

// paramTypeOf finds the type of the parameter at path for a
// *stacks.Definition[P] (through its Defaults field's type, as stacks.Info
// does not carry types); for any other Builder, or a path it does not
// have, it returns nil. Names match as stacks matches them: Go or JSON
// name, any case.
func paramTypeOf(b stacks.Builder, path string) reflect.Type {
	v := reflect.ValueOf(b)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f, ok := v.Elem().Type().FieldByName("Defaults")
	if !ok || f.Type.Kind() != reflect.Map {
		return nil
	}
	t := f.Type.Elem()
	for _, seg := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		next, ok := fieldType(t, seg)
		if !ok {
			return nil
		}
		t = next
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// typeName names a parameter's value type in help texts.
func typeName(t reflect.Type) string {
	switch {
	case t == nil:
		return "string"
	case t == reflect.TypeFor[time.Duration]():
		return "duration"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Slice:
		return "stringArray"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "int"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return "uint"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "float"
	case t.Kind() == reflect.Bool:
		return "bool"
	}
	return "string"
}

// fieldType returns the type of t's field named name (Go or JSON name).
func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if strings.EqualFold(f.Name, name) || (tag != "" && tag != "-" && strings.EqualFold(tag, name)) {
			return f.Type, true
		}
	}
	return nil, false
}

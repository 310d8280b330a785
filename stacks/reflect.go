package stacks

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// deepCopy returns a copy of v that shares no map, slice or pointer with it.
func deepCopy(v reflect.Value) reflect.Value {
	t := v.Type()
	switch v.Kind() {
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		m := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			m.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		s := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.Array:
		a := reflect.New(t).Elem()
		for i := range v.Len() {
			a.Index(i).Set(deepCopy(v.Index(i)))
		}
		return a
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		return p
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		i := reflect.New(t).Elem()
		i.Set(deepCopy(v.Elem()))
		return i
	case reflect.Struct:
		s := reflect.New(t).Elem()
		s.Set(v) // unexported fields are copied as they are
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				s.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return s
	}
	return v
}

// clone deep-copies a value of any type.
func clone[T any](v T) T {
	var out T
	rv := reflect.ValueOf(&out).Elem()
	rv.Set(deepCopy(reflect.ValueOf(&v).Elem()))
	return out
}

// atomic reports whether a struct type is filled and set as a whole: it
// has unexported fields (time.Time) or reads itself from text or JSON.
func atomic(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return true
	}
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// fillZero sets every zero field of dst (settable) to a copy of the same
// field of src, recursing into structs; maps and slices are filled only
// when nil, never merged.
func fillZero(dst, src reflect.Value) {
	switch {
	case dst.Kind() == reflect.Struct && !atomic(dst.Type()):
		for i := range dst.NumField() {
			if dst.Type().Field(i).IsExported() {
				fillZero(dst.Field(i), src.Field(i))
			}
		}
	case dst.Kind() == reflect.Pointer && !dst.IsNil() && !src.IsNil():
		fillZero(dst.Elem(), src.Elem())
	case dst.IsZero() && !src.IsZero():
		dst.Set(deepCopy(src))
	}
}

// field is one exported, JSON-visible field of a struct type.
type field struct {
	goName, jsonName string
	index            []int
	typ              reflect.Type
}

// fields lists the exported fields of struct type t that JSON encodes,
// promoted fields of embedded structs included.
func fields(t reflect.Type) []field {
	var out []field
	for _, f := range reflect.VisibleFields(t) {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if name == "" && ft.Kind() == reflect.Struct {
				continue // its fields are promoted
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, field{goName: f.Name, jsonName: name, index: f.Index, typ: f.Type})
	}
	return out
}

// lookup finds the field of t named name (Go or JSON name, any case).
func lookup(t reflect.Type, name string) (field, bool) {
	for _, f := range fields(t) {
		if strings.EqualFold(f.goName, name) || strings.EqualFold(f.jsonName, name) {
			return f, true
		}
	}
	return field{}, false
}

// leaf reports whether a parameter of type t is set as a whole (not
// entered by a longer path).
func leaf(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() != reflect.Struct || atomic(t)
}

// leafPaths lists the settable parameter paths of t (Go names), sorted.
func leafPaths(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for _, f := range fields(t) {
			p := prefix + f.goName
			if leaf(f.typ) {
				out = append(out, p)
			} else {
				walk(f.typ, p+".")
			}
		}
	}
	if !leaf(t) {
		walk(t, "")
	}
	slices.Sort(out)
	return out
}

// resolve finds the type at path in t, or fails naming the path.
func resolve(t reflect.Type, path string) (reflect.Type, error) {
	for _, seg := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || atomic(t) {
			return nil, fmt.Errorf("%q is not a parameter", path)
		}
		f, ok := lookup(t, seg)
		if !ok {
			return nil, fmt.Errorf("%q is not a parameter", path)
		}
		t = f.typ
	}
	if !leaf(t) {
		return nil, fmt.Errorf("%q is a group of parameters, not one", path)
	}
	return t, nil
}

// setPath applies one PATH=VALUE setting to root (a settable struct).
func setPath(root reflect.Value, path, value string) error {
	if _, err := resolve(root.Type(), path); err != nil {
		return err
	}
	v := root
	for _, seg := range strings.Split(path, ".") {
		v = deref(v)
		f, _ := lookup(v.Type(), seg)
		for _, i := range f.index {
			v = deref(v).Field(i)
		}
	}
	if err := setText(v, value, true); err != nil {
		return fmt.Errorf("%s=%q: %w", path, value, err)
	}
	return nil
}

// deref follows pointers, allocating nil ones.
func deref(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	return v
}

// setText sets v from its text form; collections (top) add an entry.
func setText(v reflect.Value, s string, top bool) error {
	if v.Kind() == reflect.Pointer {
		return setText(deref(v), s, top)
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration; use e.g. 30s, 5m or 1h30m")
		}
		v.SetInt(int64(d))
		return nil
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a bool; use true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer of %d bits", v.Type().Bits())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an unsigned integer of %d bits", v.Type().Bits())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(n)
	case reflect.Map:
		if !top || v.Type().Key().Kind() != reflect.String || !leaf(v.Type().Elem()) {
			return decodeJSON(v, s)
		}
		k, val, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("use KEY=VALUE to add an entry")
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if err := setText(e, val, false); err != nil {
			return fmt.Errorf("value of %s: %w", k, err)
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
	case reflect.Slice:
		if !top || !leaf(v.Type().Elem()) || v.Type().Elem().Kind() == reflect.Slice || v.Type().Elem().Kind() == reflect.Map {
			return decodeJSON(v, s)
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if err := setText(e, s, false); err != nil {
			return err
		}
		v.Set(reflect.Append(v, e))
	default:
		return decodeJSON(v, s)
	}
	return nil
}

// decodeJSON sets v from a JSON value, refusing unknown fields.
func decodeJSON(v reflect.Value, s string) error {
	p := reflect.New(v.Type())
	if err := strictJSON([]byte(s), p.Interface()); err != nil {
		return fmt.Errorf("give a JSON %s: %w", v.Type(), err)
	}
	v.Set(p.Elem())
	return nil
}

// strictJSON decodes one JSON value into out, naming every unknown field.
func strictJSON(b []byte, out any) error {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var unknown []string
	unknownFields(reflect.TypeOf(out), raw, "", &unknown)
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("unknown field(s) %s", strings.Join(unknown, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return err
	}
	return nil
}

// unknownFields lists the object keys in v (decoded JSON) that no field of
// t takes, as dotted paths.
func unknownFields(t reflect.Type, v any, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, val := range obj {
			f, ok := lookup(t, k)
			if !ok {
				*out = append(*out, strconv.Quote(prefix+k))
				continue
			}
			unknownFields(f.typ, val, prefix+k+".", out)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return
		}
		for i, val := range arr {
			unknownFields(t.Elem(), val, fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i), out)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, val := range obj {
			unknownFields(t.Elem(), val, prefix+k+".", out)
		}
	}
}

// paramType classifies a leaf parameter type as setText reads it.
func paramType(t reflect.Type) ParamType {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return DurationParam
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return StringParam
	}
	switch t.Kind() {
	case reflect.String:
		return StringParam
	case reflect.Bool:
		return BoolParam
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return IntParam
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return UintParam
	case reflect.Float32, reflect.Float64:
		return FloatParam
	case reflect.Map:
		if t.Key().Kind() == reflect.String && leaf(t.Elem()) {
			return MapParam
		}
	case reflect.Slice:
		if e := t.Elem(); leaf(e) && e.Kind() != reflect.Slice && e.Kind() != reflect.Map {
			return ListParam
		}
	}
	return JSONParam
}

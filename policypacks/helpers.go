package policypacks

import "encoding/json"

// OfType returns the resources of type typ.
func OfType(rs []Resource, typ string) []Resource {
	var out []Resource
	for _, r := range rs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Linked returns the resources of type typ whose input prop was computed from
// target (for example the encryption configuration whose "bucket" is a bucket's ID).
func Linked(rs []Resource, typ, prop, target string) []Resource {
	var out []Resource
	for _, r := range rs {
		if r.Type == typ && r.DependsOn(prop, target) {
			out = append(out, r)
		}
	}
	return out
}

// PolicyDocument parses an IAM policy document given as a JSON string or an
// object. It returns the statements, normalised so that Action, NotAction
// and Resource are always lists.
func PolicyDocument(v any) ([]map[string]any, bool) {
	var doc map[string]any
	switch d := v.(type) {
	case string:
		if err := json.Unmarshal([]byte(d), &doc); err != nil {
			return nil, false
		}
	case map[string]any:
		doc = d
	default:
		return nil, false
	}
	var stmts []map[string]any
	switch s := doc["Statement"].(type) {
	case []any:
		for _, e := range s {
			if m, ok := e.(map[string]any); ok {
				stmts = append(stmts, m)
			}
		}
	case map[string]any:
		stmts = append(stmts, s)
	}
	for _, st := range stmts {
		for _, k := range []string{"Action", "NotAction", "Resource"} {
			if s, ok := st[k].(string); ok {
				st[k] = []any{s}
			}
		}
	}
	return stmts, true
}

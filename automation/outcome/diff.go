package outcome

import (
	"reflect"
	"slices"
	"strings"
)

// PropertyChange is one property that differs between the state the engine
// recorded (Expected) and what it found or plans (Actual).
type PropertyChange struct {
	Path     string `json:"path"`
	Expected any    `json:"expected,omitempty"`
	Actual   any    `json:"actual,omitempty"`
}

// volatile reports properties that change on every write without anyone
// changing the resource (server bookkeeping), which are not drift.
func volatile(path string) bool {
	for _, p := range []string{"__inputs", "metadata.managedFields", "metadata.resourceVersion", "metadata.generation", "status"} {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// diffProperties returns the paths where old and new differ, sorted, with
// volatile bookkeeping paths left out. Values the engine masked as secrets
// compare equal to each other and are reported masked.
func diffProperties(old, new map[string]any) []PropertyChange {
	var out []PropertyChange
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		if volatile(path) {
			return
		}
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			keys := make([]string, 0, len(am)+len(bm))
			for k := range am {
				keys = append(keys, k)
			}
			for k := range bm {
				if _, ok := am[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, am[k], bm[k])
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			out = append(out, PropertyChange{Path: path, Expected: a, Actual: b})
		}
	}
	walk("", old, new)
	return out
}

// topLevel returns the distinct first path segments of changes.
func topLevel(changes []PropertyChange) []string {
	var out []string
	for _, c := range changes {
		k, _, _ := strings.Cut(c.Path, ".")
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

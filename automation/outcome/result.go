// Package outcome is the typed outcome of an engine operation and how it is
// assembled from the engine's event stream: a Result with its per-resource
// ResourceChanges and their PropertyChanges, a drift check's Drift, the
// policy findings the engine reported, and their JSON (durations in
// seconds, camelCase keys).
//
// Package automation re-exports these types under their old names
// (automation.Result, automation.ResourceChange, ...).
package outcome

import (
	"encoding/json"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/policypacks"
)

// ResourceChange is what one engine step did (or would do) to a resource.
type ResourceChange struct {
	URN  string `json:"urn"`
	Type string `json:"type"`
	// Op is the engine operation: create, update, delete, replace, same, refresh, ...
	Op string `json:"op"`
	// Diffs lists the top-level properties that differ.
	Diffs []string `json:"diffs,omitempty"`
	// DetailedDiff maps property paths to the kind of difference (add, update, delete, ...).
	DetailedDiff map[string]string `json:"detailedDiff,omitempty"`
	// Properties lists, for refreshes, each property whose live value differs
	// from the recorded state: expected (state) versus actual (live).
	Properties []PropertyChange `json:"properties,omitempty"`
	// Started is when the engine started the step (its pre event reached
	// Slipway); zero when no start was seen. Traces use it as the step
	// span's start, and Started+Duration as its end.
	Started time.Time `json:"-"`
	// Duration is the time from the engine starting the step to its outputs
	// (zero in previews). JSON carries it as durationSeconds.
	Duration time.Duration `json:"-"`
}

// MarshalJSON encodes the change with its duration in seconds.
func (c ResourceChange) MarshalJSON() ([]byte, error) {
	type plain ResourceChange
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"durationSeconds,omitempty"`
	}{plain(c), c.Duration.Seconds()})
}

// Result is the typed outcome of one operation.
type Result struct {
	Operation string `json:"operation"`
	Project   string `json:"project"`
	Stack     string `json:"stack"`
	// Summary counts resources per operation.
	Summary map[string]int `json:"summary"`
	// Resources lists per-resource steps in engine order.
	Resources []ResourceChange `json:"resources"`
	// Policy lists the policy violations the engine reported.
	Policy []policypacks.Finding `json:"policy,omitempty"`
	// Outputs are the stack outputs; secret values are replaced by mask.Text.
	Outputs map[string]any `json:"outputs,omitempty"`
	// Duration is the operation's wall time; JSON carries it as durationSeconds.
	Duration time.Duration `json:"-"`
}

// MarshalJSON encodes the result with its duration in seconds and its
// change count.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	if p.Summary == nil {
		p.Summary = map[string]int{}
	}
	if p.Resources == nil {
		p.Resources = []ResourceChange{}
	}
	return json.Marshal(struct {
		plain
		Changes int     `json:"changes"`
		Seconds float64 `json:"durationSeconds"`
	}{p, r.Changes(), r.Duration.Seconds()})
}

// Changes returns the number of resources that an operation changes (any
// operation other than same, read and refresh without a diff).
func (r *Result) Changes() int {
	if len(r.Summary) == 0 {
		// A failed run (e.g. with ExpectNoChanges) carries no summary; count the steps.
		n := 0
		for _, c := range r.Changed() {
			if c.Op != string(apitype.OpRefresh) && c.Type != "pulumi:pulumi:Stack" {
				n++
			}
		}
		return n
	}
	n := 0
	for op, c := range r.Summary {
		if op != string(apitype.OpSame) && op != string(apitype.OpRead) && op != string(apitype.OpRefresh) {
			n += c
		}
	}
	return n
}

// Changed returns the resource changes other than "same".
func (r *Result) Changed() []ResourceChange {
	var out []ResourceChange
	for _, c := range r.Resources {
		if c.Op != string(apitype.OpSame) && c.Op != string(apitype.OpRead) {
			out = append(out, c)
		}
	}
	return out
}

// Blocking returns the policy findings of the result that block the
// operation (see policypacks.Finding.Blocking).
func (r *Result) Blocking() []policypacks.Finding {
	return Blocking(r.Policy)
}

// Blocking returns the blocking findings among fs.
func Blocking(fs []policypacks.Finding) []policypacks.Finding {
	var out []policypacks.Finding
	for _, f := range fs {
		if f.Blocking() {
			out = append(out, f)
		}
	}
	return out
}

// Summary converts a preview's change summary to a Result's Summary.
func Summary(m map[apitype.OpType]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

// SummaryOf returns an update's resource changes as a Result's Summary
// (empty when the engine reported none).
func SummaryOf(m *map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return *m
}

// Outputs converts stack outputs to a Result's Outputs, with secret values
// replaced by mask.Text.
func Outputs(m auto.OutputMap) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if v.Secret {
			out[k] = mask.Text
		} else {
			out[k] = v.Value
		}
	}
	return out
}

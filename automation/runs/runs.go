// Package runs keeps the history of the operations run on each stack —
// previews, ups, drift checks, rollbacks, promotions — in the backend beside
// the stack's state (.pulumi/slipway/runs/<project>/<stack>/<id>.json), so a
// dashboard or a later process sees what ran, how it ended, what drifted and
// which policies it broke.
//
// A record holds no property values: drift is reported as property paths,
// outputs are left out, and error messages are masked (package mask)
// before they are stored.
package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/policypacks"
)

// Kind is the statestore record kind of runs.
const Kind = "runs"

// How an operation ended.
const (
	// Succeeded: the operation did what it was asked.
	Succeeded = "succeeded"
	// Failed: the operation failed.
	Failed = "failed"
	// Blocked: a mandatory policy blocked it; nothing was applied.
	Blocked = "blocked"
	// Changes: it found changes where none were expected (drift found, a
	// preview with ExpectNoChanges).
	Changes = "changes"
)

// MaxKept bounds the runs kept per stack; older ones are removed.
const MaxKept = 200

// maxError bounds the stored error message.
const maxError = 2000

// Record is one operation on one stack.
type Record struct {
	// ID orders the records: a later run has a greater ID.
	ID        string `json:"id"`
	Project   string `json:"project"`
	Stack     string `json:"stack"`
	Operation string `json:"operation"`
	// Result is Succeeded, Failed, Blocked or Changes.
	Result  string    `json:"result"`
	Started time.Time `json:"started"`
	// Duration is the operation's wall time; JSON carries it as durationSeconds.
	Duration time.Duration  `json:"-"`
	Changes  int            `json:"changes"`
	Summary  map[string]int `json:"summary,omitempty"`
	// Resources is the number of resources in the stack after the run (0
	// when unknown).
	Resources int `json:"resources,omitempty"`
	// Drift lists the resources a drift check found changed, with the
	// paths of the properties that differ.
	Drift    []Drifted             `json:"drift,omitempty"`
	Findings []policypacks.Finding `json:"findings,omitempty"`
	Error    string                `json:"error,omitempty"`
	TraceID  string                `json:"traceId,omitempty"`
	Revision string                `json:"revision,omitempty"`
	// Rollout is a rollout's record as the run left it: its plan, the
	// step it reached, its cause and every gate's check with each
	// measurement (texts masked).
	Rollout *rollout.State `json:"rollout,omitempty"`
	// Checks are the gates a deploy checked after its update (see
	// Release.Gates), with each measurement (texts masked).
	Checks []rollout.Check `json:"checks,omitempty"`
}

// Drifted is one resource a drift check found changed.
type Drifted struct {
	URN  string `json:"urn"`
	Type string `json:"type"`
	// Properties are the paths of the properties that differ (never their values).
	Properties []string `json:"properties,omitempty"`
}

// MarshalJSON encodes the record with its duration in seconds.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"durationSeconds"`
	}{plain(r), r.Duration.Seconds()})
}

// UnmarshalJSON decodes a record written by MarshalJSON.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	var v struct {
		plain
		Seconds float64 `json:"durationSeconds"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Record(v.plain)
	r.Duration = time.Duration(v.Seconds * float64(time.Second))
	return nil
}

// FromResult builds the record of an operation from its Result (which may
// be nil) and error. result is how it ended (Succeeded, Failed, Blocked or
// Changes); the error message is masked by m (a nil m still masks
// ciphertexts and serialised secrets).
func FromResult(op string, res *outcome.Result, err error, result string, m *mask.Masker) Record {
	r := Record{Operation: op, Result: result}
	if res != nil {
		r.Project, r.Stack, r.Duration = res.Project, res.Stack, res.Duration
		r.Changes, r.Summary = res.Changes(), res.Summary
		r.Findings = slices.Clone(res.Policy)
		if op == "drift" || strings.HasPrefix(res.Operation, "refresh") {
			for _, c := range res.Resources {
				if c.Op != "update" && len(c.Properties) == 0 {
					continue
				}
				d := Drifted{URN: c.URN, Type: c.Type}
				for _, p := range c.Properties {
					d.Properties = append(d.Properties, p.Path)
				}
				if len(d.Properties) == 0 {
					d.Properties = slices.Clone(c.Diffs)
				}
				r.Drift = append(r.Drift, d)
			}
		}
	}
	if err != nil {
		msg := m.String(err.Error())
		if len(msg) > maxError {
			msg = msg[:maxError] + "…"
		}
		r.Error = msg
	}
	return r
}

// SetChecks keeps a rollout's record (nil or one never started: none)
// and a deploy's gate checks in r, their texts masked by m.
func (r *Record) SetChecks(st *rollout.State, checks []rollout.Check, m *mask.Masker) {
	for _, c := range checks {
		r.Checks = append(r.Checks, c.Masked(m))
	}
	if st != nil && st.Name != "" {
		masked := st.Masked(m)
		r.Rollout = &masked
	}
}

// name is a record's name in the store.
func name(project, stack, id string) string { return project + "/" + stack + "/" + id }

// Write stores a run (giving it an ID from Started when it has none) and
// removes the oldest runs of the stack beyond MaxKept.
func Write(ctx context.Context, st *statestore.Store, r Record) error {
	if r.Project == "" || r.Stack == "" {
		return errors.New("runs: a record needs its project and stack")
	}
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	r.Started = r.Started.UTC()
	if r.ID == "" {
		r.ID = statestore.NewReleaseName(r.Started)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := st.Put(ctx, Kind, name(r.Project, r.Stack, r.ID), b); err != nil {
		return fmt.Errorf("runs: writing run %s of %s/%s: %w", r.ID, r.Project, r.Stack, err)
	}
	names, err := st.Names(ctx, Kind, r.Project+"/"+r.Stack+"/")
	if err != nil || len(names) <= MaxKept {
		return err
	}
	var errs []error
	for _, n := range names[:len(names)-MaxKept] {
		errs = append(errs, st.Delete(ctx, Kind, n))
	}
	return errors.Join(errs...)
}

// List returns the runs of a stack, oldest first.
func List(ctx context.Context, st *statestore.Store, project, stack string) ([]Record, error) {
	entries, err := st.List(ctx, Kind, project+"/"+stack+"/")
	if err != nil {
		return nil, fmt.Errorf("runs: reading the runs of %s/%s: %w", project, stack, err)
	}
	out := make([]Record, 0, len(entries))
	for _, en := range entries {
		var r Record
		if err := json.Unmarshal(en.Data, &r); err != nil {
			return nil, fmt.Errorf("runs: run %s is not valid: %w", en.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Env names one environment: a project's stack.
type Env struct {
	Project string `json:"project"`
	Stack   string `json:"stack"`
}

// Environments returns every project/stack that has a run or a release
// in the store, sorted.
func Environments(ctx context.Context, st *statestore.Store) ([]Env, error) {
	names, err := st.Names(ctx, Kind, "")
	if err != nil {
		return nil, err
	}
	seen := map[Env]bool{}
	for _, n := range names {
		parts := strings.Split(n, "/")
		if len(parts) == 3 {
			seen[Env{parts[0], parts[1]}] = true
		}
	}
	rel, err := st.ReleaseStacks(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range rel {
		seen[Env{p[0], p[1]}] = true
	}
	out := make([]Env, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Env) int {
		if c := strings.Compare(a.Project, b.Project); c != 0 {
			return c
		}
		return strings.Compare(a.Stack, b.Stack)
	})
	return out, nil
}

// Package review decides whether a reviewed preview may be applied: the
// Gate a preview must pass (no blocking policy finding, within change
// limits), and the plan comparison that makes sure an up applies exactly
// the plan that was reviewed.
//
// Package automation re-exports Gate, Verdict and PlanChangedError under
// their old names.
package review

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation/outcome"
)

// Gate is what a reviewed preview must satisfy before it may be applied.
type Gate struct {
	// MaxChanges fails the gate when more resources would change (0 = no limit).
	MaxChanges int
	// NoDeletes and NoReplaces fail the gate on any delete or replacement.
	NoDeletes, NoReplaces bool
	// Protected lists type tokens that must never be deleted or replaced
	// (for example "aws:s3/bucketV2:BucketV2").
	Protected []string
}

// Verdict is the gate's decision on a preview.
type Verdict struct {
	// Pass is set when the preview may be applied.
	Pass bool `json:"pass"`
	// Reasons say, sorted, why it may not.
	Reasons []string `json:"reasons,omitempty"`
}

// destructive are the engine operations that delete or replace a resource.
var destructive = []string{"delete", "replace", "create-replacement", "delete-replaced", "discard"}

// Check decides whether the preview res may be applied: no blocking policy
// finding, and within the gate's change limits.
func (g Gate) Check(res *outcome.Result) Verdict {
	var reasons []string
	for _, f := range res.Blocking() {
		reasons = append(reasons, fmt.Sprintf("policy %s: %s", f.Policy, outcome.MessageLine(f.Message)))
	}
	if g.MaxChanges > 0 && res.Changes() > g.MaxChanges {
		reasons = append(reasons, fmt.Sprintf("%d resources would change, more than the limit of %d", res.Changes(), g.MaxChanges))
	}
	for _, r := range res.Resources {
		if !slices.Contains(destructive, r.Op) {
			continue
		}
		del := r.Op == "delete" || r.Op == "delete-replaced" || r.Op == "discard"
		switch {
		case slices.Contains(g.Protected, r.Type):
			// A replacement shows as several steps; report it once.
			what := "replace"
			if r.Op == "delete" || r.Op == "discard" {
				what = "delete"
			}
			reasons = append(reasons, fmt.Sprintf("%s of protected %s", what, r.URN))
		case g.NoDeletes && del:
			reasons = append(reasons, fmt.Sprintf("delete of %s", r.URN))
		case g.NoReplaces && !del:
			reasons = append(reasons, fmt.Sprintf("replacement of %s", r.URN))
		}
	}
	slices.Sort(reasons)
	reasons = slices.Compact(reasons)
	return Verdict{Pass: len(reasons) == 0, Reasons: reasons}
}

// PlanChangedError says the program no longer produces the plan that was
// reviewed (and approved): nothing was applied.
type PlanChangedError struct {
	Stack string
	// Resources are the URNs whose planned goal or steps differ.
	Resources []string
}

// Error says what changed and that nothing was applied.
func (e *PlanChangedError) Error() string {
	return fmt.Sprintf("automation: the program of %s changed after its plan was reviewed (%d resource(s) differ: %s); nothing was applied, preview and review again",
		e.Stack, len(e.Resources), strings.Join(e.Resources, ", "))
}

// IsPlanChanged reports whether err is (or wraps) a *PlanChangedError.
func IsPlanChanged(err error) bool {
	var p *PlanChangedError
	return errors.As(err, &p)
}

// planGoals reads a saved update plan and returns, per resource URN, the
// canonical JSON of its goal and steps. Ciphertexts are masked (they differ
// on every encryption; the engine's plan check still guards secret values),
// and lists of URNs (dependencies) are sorted.
func planGoals(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("automation: reading the plan %s: %w", path, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("automation: plan %s is not valid JSON: %w", path, err)
	}
	if inner, ok := doc["plan"].(map[string]any); ok {
		doc = inner
	}
	plans, _ := doc["resourcePlans"].(map[string]any)
	out := map[string]string{}
	for urn, p := range plans {
		rp, _ := p.(map[string]any)
		c, err := json.Marshal(map[string]any{"goal": maskCiphertext(rp["goal"]), "steps": rp["steps"]})
		if err != nil {
			return nil, err
		}
		out[urn] = string(c)
	}
	return out, nil
}

// maskCiphertext returns v with every ciphertext masked and every list of
// URNs sorted.
func maskCiphertext(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			if k == "ciphertext" {
				m[k] = "[masked]"
				continue
			}
			m[k] = maskCiphertext(x)
		}
		return m
	case []any:
		l := make([]any, len(t))
		urns := true
		for i, x := range t {
			l[i] = maskCiphertext(x)
			s, ok := x.(string)
			urns = urns && ok && strings.HasPrefix(s, "urn:pulumi:")
		}
		if urns {
			// Dependency lists carry no order the engine relies on, and the
			// program may register them in any order.
			slices.SortFunc(l, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		}
		return l
	}
	return v
}

// ComparePlans returns, sorted, the URNs whose planned goals or steps differ
// between two saved update plans (files written by a preview's Plan
// option): the reviewed one and a fresh one. Ciphertexts and the order of
// dependency lists do not count.
func ComparePlans(reviewed, current string) ([]string, error) {
	a, err := planGoals(reviewed)
	if err != nil {
		return nil, err
	}
	b, err := planGoals(current)
	if err != nil {
		return nil, err
	}
	var diff []string
	for urn, g := range a {
		if b[urn] != g {
			diff = append(diff, urn)
		}
	}
	for urn := range b {
		if _, ok := a[urn]; !ok {
			diff = append(diff, urn)
		}
	}
	slices.Sort(diff)
	return diff, nil
}

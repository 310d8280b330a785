package automation

import (
	"fmt"
	"slices"
)

// SavePlan makes Preview save the engine's update plan to path, so a later
// Up with ApplyPlan applies exactly what was reviewed.
func SavePlan(path string) Option { return func(c *opConfig) { c.savePlan = path } }

// ApplyPlan makes Up apply exactly the plan saved by Preview at path; the
// engine fails the update when the program or the world moved since.
func ApplyPlan(path string) Option { return func(c *opConfig) { c.applyPlan = path } }

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
	Pass    bool     `json:"pass"`
	Reasons []string `json:"reasons,omitempty"`
}

var destructive = []string{"delete", "replace", "create-replacement", "delete-replaced", "discard"}

// Check decides whether the preview res may be applied: no blocking policy
// finding, and within the gate's change limits.
func (g Gate) Check(res *Result) Verdict {
	var reasons []string
	for _, f := range blocking(res.Policy) {
		reasons = append(reasons, fmt.Sprintf("policy %s: %s", f.Policy, firstLine(f.Message)))
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
			reasons = append(reasons, fmt.Sprintf("%s of protected %s", r.Op, r.URN))
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

package automation

import "github.com/slipwayhq/slipway/automation/review"

// Gate is what a reviewed preview must satisfy before it may be applied
// (see package review).
type Gate = review.Gate

// Verdict is the gate's decision on a preview.
type Verdict = review.Verdict

// PlanChangedError says the program no longer produces the plan that was
// reviewed (and approved): nothing was applied.
type PlanChangedError = review.PlanChangedError

// IsPlanChanged reports whether err is (or wraps) a *PlanChangedError.
func IsPlanChanged(err error) bool { return review.IsPlanChanged(err) }

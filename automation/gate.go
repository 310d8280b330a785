package automation

import "github.com/slipwayhq/slipway/automation/review"

// IsPlanChanged reports whether err is (or wraps) a *review.PlanChangedError.
func IsPlanChanged(err error) bool { return review.IsPlanChanged(err) }

package automation

import (
	"github.com/slipwayhq/slipway/automation/internal/pulumicli"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/review"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// ErrKill, wrapped by the cause of an engine operation's cancelled context
// (context.WithCancelCause), makes the engine's whole process tree — the
// pulumi CLI and its plugins — be killed with SIGKILL at once instead of
// interrupted: for a holder that must stop writing now (a fleet runner
// whose Lease deadline passed).
var ErrKill = pulumicli.ErrKill

// IsStackLocked reports whether err is (or wraps) a *statestore.StackLockedError.
func IsStackLocked(err error) bool { return statestore.IsStackLocked(err) }

// IsRepairRequired reports whether err is (or wraps) a *recovery.RepairRequiredError.
func IsRepairRequired(err error) bool { return recovery.IsRepairRequired(err) }

// IsPlanChanged reports whether err is (or wraps) a *review.PlanChangedError.
func IsPlanChanged(err error) bool { return review.IsPlanChanged(err) }

// Release statuses (see package releases). Applied, Verified and Restored
// releases are good: Rollback and Deploy's rollback may restore them.
const (
	// ReleaseApplied: a successful up (no smoke check ran).
	ReleaseApplied = releases.Applied
	// ReleaseVerified: Deploy applied it and its smoke check passed.
	ReleaseVerified = releases.Verified
	// ReleaseRestored: a rollback applied it again.
	ReleaseRestored = releases.Restored
	// ReleaseFailed: Deploy's up or smoke check failed, or a rollback to it failed.
	ReleaseFailed = releases.Failed
	// ReleaseRolledBack: it was good until a rollback replaced it.
	ReleaseRolledBack = releases.RolledBack
)

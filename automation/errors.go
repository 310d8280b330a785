package automation

import (
	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/ephemeral"
	"github.com/slipwayhq/slipway/automation/internal/promote"
	"github.com/slipwayhq/slipway/automation/internal/pulumicli"
	"github.com/slipwayhq/slipway/automation/internal/release"
	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/review"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// Every error type below is returned as a pointer; get it with errors.As,
// or ask the predicate of the same name.

// UnknownStackError says an operation named a stack the backend does not hold.
type UnknownStackError = engine.UnknownStackError

// MissingPluginError says a program needs a resource plugin that is neither
// installed nor given, and the engine may not download it.
// Get it with errors.As (a *MissingPluginError).
type MissingPluginError = engine.MissingPluginError

// RecordsError refuses a backend that Slipway keeps no records in: its
// release history, run history, approvals and ephemeral tags would stay on
// one machine. WithLocalRecords (the CLI's --local-records) accepts that.
// Get it with errors.As.
type RecordsError = engine.RecordsError

// PolicyBlockedError is returned when mandatory policy violations stop an operation.
type PolicyBlockedError = engine.PolicyBlockedError

// ChangesFoundError says an operation run with ExpectNoChanges found changes;
// the operation itself succeeded.
type ChangesFoundError = engine.ChangesFoundError

// OpError is the error of a failed engine operation: which operation of
// which stack failed, and why (Err). Get it with errors.As; classify its
// cause with the predicates, which see through it: IsStackLocked (another
// update holds the stack), IsPolicyBlocked, IsChangesFound, IsTransient.
type OpError = stack.OpError

// ReleaseError says a release failed and what was done about it.
// Get it with errors.As (a *ReleaseError).
type ReleaseError = release.ReleaseError

// PromotionError says at which stage and gate a promotion stopped.
// Get it with errors.As (a *PromotionError).
type PromotionError = promote.PromotionError

// NotEphemeralError says an ephemeral-only operation named a stack that does
// not carry Slipway's ephemeral tag.
type NotEphemeralError = ephemeral.NotEphemeralError

// ErrAnalyzerNotServed is returned before any engine run when policies would
// be served by the running binary but it never called ServeIfAnalyzer: the
// engine would start the whole binary (its main) as a policy plugin.
var ErrAnalyzerNotServed = engine.ErrAnalyzerNotServed

// IsUnknownStack reports whether err is (or wraps) an *UnknownStackError.
func IsUnknownStack(err error) bool { return engine.IsUnknownStack(err) }

// IsPolicyBlocked reports whether err is (or wraps) a *PolicyBlockedError.
func IsPolicyBlocked(err error) bool { return engine.IsPolicyBlocked(err) }

// IsChangesFound reports whether err is (or wraps) a *ChangesFoundError.
func IsChangesFound(err error) bool { return engine.IsChangesFound(err) }

// IsNotEphemeral reports whether err is (or wraps) a *NotEphemeralError.
func IsNotEphemeral(err error) bool { return ephemeral.IsNotEphemeral(err) }

// IsTransient reports whether err looks like a transient failure worth
// retrying. Concurrent-update and policy errors are never transient.
func IsTransient(err error) bool { return stack.IsTransient(err) }

// ValidateBackend checks a backend URL without contacting it: a supported
// scheme, an absolute directory for file://, a bucket or host for the rest.
func ValidateBackend(raw string) error { return engine.ValidateBackend(raw) }

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

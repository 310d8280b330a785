package app

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// TestClassify_EachErrorHasOneCodeAndExitCode: the typed errors of the
// library map to the documented exit codes, through any wrapping.
func TestClassify_EachErrorHasOneCodeAndExitCode(t *testing.T) {
	wrap := func(err error) error {
		return fmt.Errorf("slipway: %w", &automation.OpError{Op: "up", Stack: "dev", Err: err})
	}
	for _, c := range []struct {
		err  error
		code string
		exit int
	}{
		{nil, "", ExitOK},
		{errors.New("boom"), "error", ExitError},
		{BadInput("--env is required"), "invalid_input", ExitError},
		{wrap(&automation.UnknownStackError{Stack: "prdo"}), "unknown_environment", ExitError},
		{wrap(&automation.NotEphemeralError{Stack: "prod"}), "not_ephemeral", ExitError},
		{wrap(&recovery.RepairRequiredError{Stack: "dev"}), "repair_required", ExitError},
		{wrap(&automation.ChangesFoundError{Op: "preview", Stack: "dev", Changes: 2}), "changes_found", ExitChanges},
		{wrap(&automation.PolicyBlockedError{Op: "up"}), "policy_blocked", ExitPolicy},
		{wrap(&statestore.StackLockedError{Stack: "dev"}), "stack_locked", ExitLocked},
		// The store's own lock refusal, wrapped by recovery and joined with the engine's error.
		{fmt.Errorf("automation: stack web/dev: %w", errors.Join(errors.New("failed to load checkpoint"),
			fmt.Errorf("automation: the stack's lock could not be taken: %w", &statestore.StackLockedError{Project: "web", Stack: "dev"}))), "stack_locked", ExitLocked},
		{&CodedError{Code: ExitChanges, Kind: "drift_found", Err: errors.New("drift")}, "drift_found", ExitChanges},
		{&CodedError{Code: ExitError, Err: errors.New("2 of 3 failed")}, "error", ExitError},
	} {
		code, exit := Classify(c.err)
		assert.Equal(t, c.code, code, "%v", c.err)
		assert.Equal(t, c.exit, exit, "%v", c.err)
	}
}

// TestWorst_ErrorThenLockThenPolicyThenChanges: several environments (or
// several drift checks) combine to the worst outcome.
func TestWorst_ErrorThenLockThenPolicyThenChanges(t *testing.T) {
	assert.Equal(t, ExitOK, Worst())
	assert.Equal(t, ExitOK, Worst(ExitOK, ExitOK))
	assert.Equal(t, ExitChanges, Worst(ExitOK, ExitChanges))
	assert.Equal(t, ExitPolicy, Worst(ExitChanges, ExitPolicy, ExitOK))
	assert.Equal(t, ExitLocked, Worst(ExitPolicy, ExitLocked))
	assert.Equal(t, ExitError, Worst(ExitLocked, ExitError, ExitChanges), "a failed check is never hidden")
	assert.Equal(t, "blocked", StatusOf(&automation.PolicyBlockedError{}))
	assert.Equal(t, "changes", StatusOf(&automation.ChangesFoundError{}))
	assert.Equal(t, "succeeded", StatusOf(nil))
	assert.Equal(t, "failed", StatusOf(errors.New("x")))
}

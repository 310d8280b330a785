package automation

import (
	"context"

	"github.com/slipwayhq/slipway/automation/internal/canary"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/rollout"
)

// Canary is a release rolled out in steps (see Engine.Rollout): the
// release, the function that builds its canary's program at a weight, and
// the steps.
type Canary = canary.Canary

// Rollout rolls a release out in steps (package rollout): each weight step
// updates the stack to c.At(weight) (held to the release's policies), each
// pause waits, each analysis gates; then the promotion deploys the release
// (smoke check, recorded as verified). A failed analysis, step or
// promotion aborts: the last good release (rebuilt by lookup) is
// re-applied and the release is recorded as failed with the cause, which
// DORA counts as a failed change. The progress is a record in the backend
// beside the stack: a killed process resumes at its step when Rollout is
// called again with the same release, and one rollout runs at a time per
// stack. It returns the rollout's record; Phase says whether it was
// promoted, aborted or paused (PromoteRollout passes a pause). When a
// mandatory policy blocked a step or the promotion, the rollout is aborted as above
// and the record comes with that *PolicyBlockedError (IsPolicyBlocked).
func (e *Engine) Rollout(ctx context.Context, c Canary, lookup func(version string) (Program, error), opts ...optup.Option) (rollout.State, error) {
	if err := canary.CheckCanarySteps(c.Steps); err != nil {
		return rollout.State{}, err
	}
	return canary.Run(ctx, e.e, c, lookup, opts...)
}

// BlueGreen is a release rolled out blue/green (see
// Engine.RolloutBlueGreen): the release, the function that builds its
// program previewed or switched, and the steps (rollout.BlueGreen).
type BlueGreen = canary.BlueGreen

// RolloutBlueGreen rolls a release out blue/green, with Rollout's record,
// resume, one-at-a-time and abort: the preview step updates the stack to
// b.At(false) (the new version beside the old one, which keeps every
// request), analysis gates run against the preview, the switch (the one
// Weight 100 step) updates it to b.At(true) (every request to the new
// version, the old one kept running), a pause keeps it so; then the
// promotion deploys the release, scaling the old version down (recorded
// verified). A failed gate, step or promotion — or AbortBlueGreen from any
// process, also during the pause — re-applies the last good release: the
// old version, never touched, takes every request again at once. RolloutOf
// and PromoteRollout work on it as on a canary.
func (e *Engine) RolloutBlueGreen(ctx context.Context, b BlueGreen, lookup func(version string) (Program, error), opts ...optup.Option) (rollout.State, error) {
	return canary.RunBlueGreen(ctx, e.e, b, lookup, opts...)
}

// AbortBlueGreen aborts b's rollout (see AbortRollout): the old version
// serves again and the new one is removed.
func (e *Engine) AbortBlueGreen(ctx context.Context, b BlueGreen, lookup func(version string) (Program, error), cause string, opts ...optup.Option) (rollout.State, error) {
	return canary.AbortBlueGreen(ctx, e.e, b, lookup, cause, opts...)
}

// RolloutOf returns the rollout record of a stack, as any process on the
// backend sees it; ok is false when it has none.
func (e *Engine) RolloutOf(ctx context.Context, project, stack string) (st rollout.State, ok bool, err error) {
	return canary.Get(ctx, e.e, project, stack)
}

// PromoteRollout passes the pause (or inconclusive analysis) a stack's
// rollout is in; the next Rollout goes on from there.
func (e *Engine) PromoteRollout(ctx context.Context, project, stack string) (rollout.State, error) {
	return canary.Promote(ctx, e.e, project, stack)
}

// AbortRollout aborts c's rollout: the last good release is re-applied
// and the release recorded as failed with cause. A rollout that is over is
// returned as it is.
func (e *Engine) AbortRollout(ctx context.Context, c Canary, lookup func(version string) (Program, error), cause string, opts ...optup.Option) (rollout.State, error) {
	return canary.Abort(ctx, e.e, c, lookup, cause, opts...)
}

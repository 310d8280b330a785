// Package canary is the engine's progressive delivery: a release rolled
// out in steps (package rollout) where each weight step is an update of
// the canary's program, the promotion is a deploy of the release (recorded
// as verified, smoke-checked) and an abort re-applies the last good
// release with the cause in the release history.
package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/release"
	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// Canary is a release rolled out in steps.
type Canary struct {
	// Release is the new version: the promotion deploys its program and
	// smoke check.
	Release release.Release
	// At returns the program that runs the new version's canary with
	// weight percent of the traffic beside the stable version (for a
	// workload: workload.Args.CanaryAt).
	At func(weight int) (engine.Program, error)
	// Steps are the rollout's steps (see rollout.Step).
	Steps []rollout.Step
	// OnEvent, when set, is called after each change of the rollout.
	OnEvent func(rollout.Event)
	// Now and After are rollout.Options' clock (tests).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Name is the rollout record's name of a stack.
func Name(project, stack string) string { return project + "/" + stack }

// Run rolls c out (see automation.Engine.Rollout).
func Run(ctx context.Context, e *engine.Engine, c Canary, lookup func(version string) (engine.Program, error), opts ...optup.Option) (st rollout.State, err error) {
	if c.At == nil {
		return st, errors.New("automation: Canary.At is nil; give the function that builds the canary's program at a weight")
	}
	if err := rollout.Validate(c.Steps); err != nil {
		return st, err
	}
	p := c.Release.Program
	ctx, ob := e.Observe(ctx, "rollout", p)
	ob.Rollout = &st // its steps and measurements go into the run record
	defer func() { ob.EndDeploy(nil, st.Phase == rollout.Aborted, err) }()
	store, _, err := ob.Operation.Records(ctx)
	if err != nil {
		return st, err
	}
	up := stack.UpConfig(opts)
	up.NoRecord = true
	target := &target{e: e, opc: ob.Operation, c: c, lookup: lookup, up: up, masker: ob.Secrets}
	st, err = rollout.Run(ctx, store, Name(p.Project, p.Stack), c.Release.Version, target, c.Steps,
		rollout.Options{OnEvent: observer(ctx, e, p, c.OnEvent, 0), Now: c.Now, After: c.After, Secrets: ob.Secrets})
	if err == nil && st.Phase == rollout.Aborted && target.aborted && !target.recorded { // not when another process aborted it
		err = target.record(ctx, st.Cause)
	}
	if err == nil && st.Phase == rollout.Aborted && target.blocked != nil {
		err = target.blocked // a mandatory policy stopped a step: the caller sees the typed error
	}
	return st, err
}

// target moves the stack: weights are updates of the canary's program.
type target struct {
	e        *engine.Engine
	opc      *engine.Operation
	c        Canary
	lookup   func(version string) (engine.Program, error)
	up       stack.OpConfig
	masker   *mask.Masker
	recorded bool
	aborted  bool  // this process re-applied the last good release
	blocked  error // the first step or promotion a mandatory policy blocked (a *engine.PolicyBlockedError)
}

// SetWeight updates the stack to the canary's program at weight.
func (t *target) SetWeight(ctx context.Context, weight int) error {
	prog, err := t.c.At(weight)
	if err != nil {
		return fmt.Errorf("building the canary's program at %d %%: %w", weight, err)
	}
	if prog.Project != t.c.Release.Program.Project || prog.Stack != t.c.Release.Program.Stack {
		return fmt.Errorf("Canary.At(%d) returned stack %s/%s, not the release's %s/%s", weight, prog.Project, prog.Stack,
			t.c.Release.Program.Project, t.c.Release.Program.Stack)
	}
	if len(prog.Policies) == 0 {
		prog.Policies = t.c.Release.Program.Policies // every step is held to the release's policies
	}
	ctx, done := t.e.Stage(ctx, telemetry.StageDeploy)
	st, err := stack.Upsert(ctx, t.e, prog)
	if err == nil {
		_, err = st.RunUp(ctx, t.up)
	}
	done(err)
	if engine.IsPolicyBlocked(err) && t.blocked == nil {
		t.blocked = err
	}
	return err
}

// Promote deploys the release: the stable version becomes the new one,
// recorded as verified when its smoke check passes.
func (t *target) Promote(ctx context.Context) error {
	_, err := release.Run(ctx, t.e, t.opc, t.c.Release, t.lookup, false, t.up)
	if engine.IsPolicyBlocked(err) && t.blocked == nil {
		t.blocked = err
	}
	var rerr *release.ReleaseError
	if errors.As(err, &rerr) && rerr.Restored != "" && rerr.RollbackErr == nil {
		t.recorded = true // the deploy recorded the failure and restored the last good release
	}
	return err
}

// Abort re-applies the last good release (the stable version), without
// the canary.
func (t *target) Abort(ctx context.Context) error {
	p := t.c.Release.Program
	ctx, done := t.e.Stage(ctx, telemetry.StageRollback)
	recs, err := t.e.ReleasesIn(ctx, t.opc, p.Project, p.Stack)
	if err != nil {
		done(err)
		return err
	}
	lkg := releases.NewestGood(recs, len(recs), t.c.Release.Version)
	if lkg == nil {
		err = fmt.Errorf("stack %s/%s has no good release to go back to; deploy the stable version first", p.Project, p.Stack)
		done(err)
		return err
	}
	prog, err := t.lookup(lkg.Version)
	if err == nil {
		if len(prog.Policies) == 0 {
			prog.Policies = p.Policies
		}
		var st *stack.Stack
		if st, err = stack.Select(ctx, t.e, prog); err == nil {
			_, err = st.RunUp(ctx, t.up)
		}
	}
	done(err)
	t.aborted = err == nil
	return err
}

// record writes the aborted release into the history: failed, with the
// rollout's cause (DORA counts it as a failed change).
func (t *target) record(ctx context.Context, cause string) error {
	st, err := stack.Select(ctx, t.e, t.c.Release.Program)
	if err != nil {
		return err
	}
	_, err = stack.Record(ctx, t.e, t.opc, st, t.c.Release.Version, releases.Failed, "rollout aborted: "+t.masker.String(cause), "", time.Time{})
	t.recorded = err == nil
	return err
}

// records runs f on the backend's records in an operation of its own.
func records[T any](ctx context.Context, e *engine.Engine, f func(context.Context, *statestore.Store) (T, error)) (T, error) {
	ctx, opc, end := e.Begin(ctx)
	defer end()
	s, _, err := opc.Records(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(ctx, s)
}

// Get returns the rollout record of a stack; ok is false when there is none.
func Get(ctx context.Context, e *engine.Engine, project, stack string) (st rollout.State, ok bool, err error) {
	_, err = records(ctx, e, func(ctx context.Context, s *statestore.Store) (struct{}, error) {
		st, ok, err = rollout.Get(ctx, s, Name(project, stack))
		return struct{}{}, err
	})
	return st, ok, err
}

// Promote passes the pause a stack's rollout is in (see rollout.Promote).
func Promote(ctx context.Context, e *engine.Engine, project, stack string) (rollout.State, error) {
	return records(ctx, e, func(ctx context.Context, s *statestore.Store) (rollout.State, error) {
		return rollout.Promote(ctx, s, Name(project, stack))
	})
}

// Abort aborts c's rollout: the last good release is re-applied and the
// release recorded as failed with cause.
func Abort(ctx context.Context, e *engine.Engine, c Canary, lookup func(version string) (engine.Program, error), cause string, opts ...optup.Option) (st rollout.State, err error) {
	p := c.Release.Program
	ctx, ob := e.Observe(ctx, "rollout", p)
	ob.Rollout = &st
	defer func() { ob.EndDeploy(nil, st.Phase == rollout.Aborted, err) }()
	store, _, err := ob.Operation.Records(ctx)
	if err != nil {
		return st, err
	}
	up := stack.UpConfig(opts)
	up.NoRecord = true
	t := &target{e: e, opc: ob.Operation, c: c, lookup: lookup, up: up, masker: ob.Secrets}
	before, ok, err := rollout.Get(ctx, store, Name(p.Project, p.Stack))
	switch {
	case err != nil:
		return before, err
	case !ok:
		return before, fmt.Errorf("automation: %s/%s has no rollout to abort", p.Project, p.Stack)
	case before.Phase.Final():
		return before, nil
	}
	st, err = rollout.Abort(ctx, store, Name(p.Project, p.Stack), t, cause)
	if err == nil && st.Phase == rollout.Aborted {
		observer(ctx, e, p, nil, len(st.Checks))(rollout.Event{State: st, Step: st.Step, What: "aborted"})
		err = t.record(ctx, st.Cause)
	}
	return st, err
}

package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/release"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/rollout"
)

// BlueGreen is a release rolled out blue/green: the new version previewed
// beside the active one with none of the traffic, analysed, switched to at
// once, the old version kept for a while, then scaled down.
//
// It runs on a canary's machinery (Run): the steps are rollout.BlueGreen's
// — the Preview step is At(false), the switch is the one Weight 100 step
// and is At(true), a pause after it keeps the old version —, the promotion
// is a deploy of the release (whose program runs the new version alone:
// the old one is scaled down; recorded verified) and an abort, at any step,
// re-applies the last good release (the old version alone, which was never
// touched: switching back starts no pod).
type BlueGreen struct {
	// Release is the new version: the promotion deploys its program and
	// smoke check.
	Release release.Release
	// At returns the program that runs the new version beside the active
	// one: previewed (switched false: the active version keeps every
	// request) or switched (every request goes to the new version, the old
	// one keeps running). For a workload: workload.Args.BlueGreenAt.
	At func(switched bool) (engine.Program, error)
	// Steps are the rollout's steps, checked by rollout.ValidateBlueGreen
	// (e.g. rollout.BlueGreen(10*time.Minute, gates...)).
	Steps []rollout.Step
	// OnEvent, when set, is called after each change of the rollout.
	OnEvent func(rollout.Event)
	// Now and After are rollout.Options' clock (tests).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// canary is b on the canary's machinery: weight 0 is the preview, weight
// 100 the switch (ValidateBlueGreen allows no other).
func (b BlueGreen) canary() Canary {
	return Canary{Release: b.Release, Steps: b.Steps, OnEvent: b.OnEvent, Now: b.Now, After: b.After,
		At: func(weight int) (engine.Program, error) { return b.At(weight == 100) }}
}

// RunBlueGreen rolls b out (see automation.Engine.RolloutBlueGreen).
func RunBlueGreen(ctx context.Context, e *engine.Engine, b BlueGreen, lookup func(version string) (engine.Program, error), opts ...optup.Option) (rollout.State, error) {
	if b.At == nil {
		return rollout.State{}, errors.New("automation: BlueGreen.At is nil; give the function that builds the program previewed or switched (e.g. workload.Args.BlueGreenAt)")
	}
	if err := rollout.ValidateBlueGreen(b.Steps); err != nil {
		return rollout.State{}, err
	}
	return Run(ctx, e, b.canary(), lookup, opts...)
}

// AbortBlueGreen aborts b's rollout: the last good release is re-applied
// (the main Service switches back to the old version, the new one is
// removed) and the release recorded as failed with cause.
func AbortBlueGreen(ctx context.Context, e *engine.Engine, b BlueGreen, lookup func(version string) (engine.Program, error), cause string, opts ...optup.Option) (rollout.State, error) {
	return Abort(ctx, e, b.canary(), lookup, cause, opts...)
}

// CheckCanarySteps refuses steps a canary cannot run: a Preview (weight 0)
// is blue/green's, a canary's program has no weight 0.
func CheckCanarySteps(steps []rollout.Step) error {
	for i, s := range steps {
		if s.Preview {
			return fmt.Errorf("automation: Canary.Steps[%d]: a canary has no preview step; give a weight (1-100), or roll out blue/green (Engine.RolloutBlueGreen)", i)
		}
	}
	return nil
}

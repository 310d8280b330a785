package canary

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/rollout"
)

// TestCheckCanarySteps_RefusesAPreview: a canary's program has no weight
// 0, so a Preview step is blue/green's only.
func TestCheckCanarySteps_RefusesAPreview(t *testing.T) {
	assert.NoError(t, CheckCanarySteps([]rollout.Step{{Weight: 10}, {Weight: 100}}))
	assert.ErrorContains(t, CheckCanarySteps([]rollout.Step{{Weight: 10}, {Preview: true}}), "Canary.Steps[1]: a canary has no preview step")
}

// TestRunBlueGreen_RefusesBadInputBeforeTouchingAnything: no At, or steps
// that are not blue/green's, fail before the engine is used (it is nil
// here).
func TestRunBlueGreen_RefusesBadInputBeforeTouchingAnything(t *testing.T) {
	at := func(bool) (engine.Program, error) { return engine.Program{}, nil }
	_, err := RunBlueGreen(context.Background(), nil, BlueGreen{Steps: rollout.BlueGreen(0)}, nil)
	assert.ErrorContains(t, err, "BlueGreen.At is nil")
	_, err = RunBlueGreen(context.Background(), nil, BlueGreen{At: at, Steps: []rollout.Step{{Weight: 10}}}, nil)
	assert.ErrorContains(t, err, "starts with the preview")
}

// TestBlueGreen_CanaryMapsThePreviewAndTheSwitch: on the canary's
// machinery, weight 0 builds the preview and weight 100 the switch.
func TestBlueGreen_CanaryMapsThePreviewAndTheSwitch(t *testing.T) {
	var got []bool
	b := BlueGreen{At: func(switched bool) (engine.Program, error) {
		got = append(got, switched)
		return engine.Program{}, nil
	}}
	c := b.canary()
	_, _ = c.At(0)
	_, _ = c.At(100)
	assert.Equal(t, []bool{false, true}, got)
}

package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/rollout"
)

// TestBlueGreen_PreviewGateSwitchKeepOldThenPromote: the blue/green steps
// preview with no traffic (weight 0), gate, switch (weight 100), keep the
// old version, then promote; the record reads them.
func TestBlueGreen_PreviewGateSwitchKeepOldThenPromote(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	steps := rollout.BlueGreen(10*time.Minute, gate("smoke", rollout.Successful))
	require.NoError(t, rollout.ValidateBlueGreen(steps))
	var weights []int
	s, err := rollout.Run(ctx, st, "shop/prod", "web:1.28", tg.Target(), steps, rollout.Options{After: instant, OnEvent: func(ev rollout.Event) {
		if ev.What == "step" {
			weights = append(weights, ev.State.Weight)
		}
	}})
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, s.Phase, s.Cause)
	assert.Equal(t, []string{"preview", "analysis smoke", "weight 100", "pause 10m0s"}, s.Plan)
	assert.Equal(t, []string{"weight 0", "weight 100", "promote"}, tg.Calls())
	assert.Equal(t, []int{0, 0, 100, 100}, weights, "no traffic to the preview, all of it after the switch")
}

func TestBlueGreen_StepsWithoutGatesOrDelay(t *testing.T) {
	assert.Equal(t, []string{"preview", "weight 100"}, planOf(rollout.BlueGreen(0)))
}

func planOf(steps []rollout.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.String())
	}
	return out
}

func TestValidateBlueGreen_NamesTheStep(t *testing.T) {
	g := gate("smoke", rollout.Successful)
	for name, tc := range map[string]struct {
		steps []rollout.Step
		want  string
	}{
		"no preview":        {[]rollout.Step{{Weight: 100}}, "steps[0]: a blue/green rollout starts with the preview"},
		"partial weight":    {[]rollout.Step{{Preview: true}, {Weight: 50}}, "steps[1].Weight: 50; blue/green switches all the traffic at once"},
		"no switch":         {[]rollout.Step{{Preview: true}, {Gates: []rollout.Gate{g}}}, "needs the switch"},
		"two switches":      {[]rollout.Step{{Preview: true}, {Weight: 100}, {Weight: 100}}, "steps[2]: a blue/green rollout switches once"},
		"two previews":      {[]rollout.Step{{Preview: true}, {Preview: true}, {Weight: 100}}, "steps[1]: a blue/green rollout previews once"},
		"preview and pause": {[]rollout.Step{{Preview: true, Pause: time.Second}, {Weight: 100}}, "steps[0]: set exactly one of Preview, Weight"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, rollout.ValidateBlueGreen(tc.steps), tc.want)
		})
	}
}

// TestRun_AbortedByAnotherProcessDuringAPauseStops: a rollout waiting in a
// pause that another process aborts (the record says Aborted) does not go
// on when the pause ends: it returns the aborted record and never
// promotes.
func TestRun_AbortedByAnotherProcessDuringAPauseStops(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	steps := rollout.BlueGreen(time.Hour)
	release := make(chan time.Time)
	inPause := make(chan struct{})
	done := make(chan struct{})
	var s rollout.State
	var err error
	go func() {
		defer close(done)
		s, err = rollout.Run(ctx, st, "e", "v2", tg.Target(), steps, rollout.Options{After: func(time.Duration) <-chan time.Time {
			close(inPause)
			return release
		}})
	}()
	<-inPause
	other := &target{}
	aborted, aerr := rollout.Abort(ctx, st, "e", other.Target(), "switch back")
	require.NoError(t, aerr)
	assert.Equal(t, rollout.Aborted, aborted.Phase)
	close(release)
	<-done
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, s.Phase)
	assert.Equal(t, "switch back", s.Cause)
	assert.Equal(t, []string{"weight 0", "weight 100"}, tg.Calls(), "the waiting process neither promotes nor steps on")
	assert.Equal(t, []string{"abort"}, other.Calls())
	got, ok, err := rollout.Get(ctx, st, "e")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, rollout.Aborted, got.Phase, "the abort's record stands")
}

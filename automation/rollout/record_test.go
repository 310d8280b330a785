package rollout_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/slipwayhq/slipway/automation/rollout"
)

func TestState_StepStatus(t *testing.T) {
	plan := []string{"weight 10", "pause 1m", "analysis errors"}
	for _, c := range []struct {
		phase rollout.Phase
		step  int
		want  []rollout.StepStatus
	}{
		{rollout.Progressing, 1, []rollout.StepStatus{rollout.StepPassed, rollout.StepRunning, rollout.StepPending}},
		{rollout.Paused, 1, []rollout.StepStatus{rollout.StepPassed, rollout.StepPaused, rollout.StepPending}},
		{rollout.Aborted, 2, []rollout.StepStatus{rollout.StepPassed, rollout.StepPassed, rollout.StepFailed}},
		{rollout.Promoted, 3, []rollout.StepStatus{rollout.StepPassed, rollout.StepPassed, rollout.StepPassed}},
	} {
		s := rollout.State{Plan: plan, Phase: c.phase, Step: c.step}
		var got []rollout.StepStatus
		for i := range s.Plan {
			got = append(got, s.StepStatus(i))
		}
		assert.Equal(t, c.want, got, "%s at step %d", c.phase, c.step)
	}
}

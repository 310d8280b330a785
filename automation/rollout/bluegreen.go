package rollout

import (
	"errors"
	"fmt"
	"time"
)

// BlueGreen returns the steps of a blue/green rollout: preview the new
// version beside stable with none of the traffic, run gates against the
// preview (skipped when there are none), switch (a Weight 100 step: every
// request at once, e.g. a Service selector), then keep the old version
// running for keepOld (skipped when 0) so an abort switches back without
// starting anything; the promotion then scales the old version down.
func BlueGreen(keepOld time.Duration, gates ...Gate) []Step {
	steps := []Step{{Preview: true}}
	if len(gates) > 0 {
		steps = append(steps, Step{Gates: gates})
	}
	steps = append(steps, Step{Weight: 100})
	if keepOld > 0 {
		steps = append(steps, Step{Pause: keepOld})
	}
	return steps
}

// ValidateBlueGreen reports the first step a blue/green rollout cannot
// run, naming it and the fix: the steps are valid (Validate), the first
// one is the Preview, and the only other traffic step is the switch, one
// Weight 100 step; gates and pauses may come before or after it.
func ValidateBlueGreen(steps []Step) error {
	if err := Validate(steps); err != nil {
		return err
	}
	if !steps[0].Preview {
		return fmt.Errorf("rollout: steps[0]: a blue/green rollout starts with the preview (Step{Preview: true}), not %s", steps[0])
	}
	switched := false
	for i, s := range steps[1:] {
		switch {
		case s.Preview:
			return fmt.Errorf("rollout: steps[%d]: a blue/green rollout previews once, in steps[0]", i+1)
		case s.Weight > 0 && s.Weight < 100:
			return fmt.Errorf("rollout: steps[%d].Weight: %d; blue/green switches all the traffic at once, use Weight 100 (the switch)", i+1, s.Weight)
		case s.Weight == 100 && switched:
			return fmt.Errorf("rollout: steps[%d]: a blue/green rollout switches once", i+1)
		case s.Weight == 100:
			switched = true
		}
	}
	if !switched {
		return errors.New("rollout: a blue/green rollout needs the switch (Step{Weight: 100}) after the preview")
	}
	return nil
}

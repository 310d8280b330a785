package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// standIn is the outcome of a Run under Options.StandIn: after the fixed
// delay (or when ctx ends first: then the outcome is not recorded, as for
// an interrupted engine), a success that looks like the operation's own
// (an up applied no changes, a drift check found none, a destroy removed
// the stack), without reading a Secret, building a program or starting
// an engine.
func standIn(ctx context.Context, run *v1alpha1.Run, delay time.Duration) result {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return result{failed: true, reason: v1alpha1.ReasonFailed, message: "stand-in interrupted"}
	case <-t.C:
	}
	res := result{stack: run.Spec.Stack}
	switch run.Spec.Operation {
	case v1alpha1.OpDrift:
		res.message = "drift: none found (stand-in, no engine)"
	default:
		res.message = fmt.Sprintf("%s: no changes (stand-in, no engine)", run.Spec.Operation)
	}
	return res
}

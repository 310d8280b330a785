package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// errRunTimeout is the cause of a Run's context when spec.timeout passed.
var errRunTimeout = errors.New("runner: the run passed its timeout")

// timeout is the Run's deadline: spec.timeout, else
// v1alpha1.DefaultRunTimeout (a Run is never unbounded).
func timeout(run *v1alpha1.Run) time.Duration {
	if t := run.Spec.Timeout; t != nil && t.Duration > 0 {
		return t.Duration
	}
	return v1alpha1.DefaultRunTimeout
}

// performWithin is perform under the Run's timeout: a context deadline on
// the engine run, whose cancellation kills the engine. A Run that passed it
// fails with reason Timeout, whatever error the killed engine returned (an
// operation that finished without error just as the deadline passed keeps
// its success).
func (r *Runner) performWithin(ctx context.Context, run *v1alpha1.Run, prev takeover, fenceFile string, log *slog.Logger) result {
	d := timeout(run)
	opCtx, cancel := context.WithTimeoutCause(ctx, d, errRunTimeout)
	defer cancel()
	var res result
	if r.o.StandIn > 0 {
		res = standIn(opCtx, run, r.o.StandIn)
	} else {
		res = r.perform(opCtx, run, prev, fenceFile, log)
	}
	if res.failed && ctx.Err() == nil && errors.Is(context.Cause(opCtx), errRunTimeout) {
		log.Warn("run timed out; the engine was stopped", "timeout", d)
		res.failed, res.reason = true, v1alpha1.ReasonTimeout
		res.message = fmt.Sprintf("%s did not finish within spec.timeout %s (the Environment's spec.runTimeout); the engine was stopped", run.Spec.Operation, d)
	}
	return res
}

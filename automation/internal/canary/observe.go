package canary

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// observer returns the OnEvent of a rollout of p's stack inside ctx's
// operation: each event becomes span events and metrics
// (telemetry.RolloutObserver) and a notification, then next
// (Canary.OnEvent, may be nil) is called. The record's first observed
// checks were observed before.
func observer(ctx context.Context, e *engine.Engine, p engine.Program, next func(rollout.Event), observed int) func(rollout.Event) {
	ob := engine.Observed(ctx)
	if ob == nil {
		return next
	}
	to := &telemetry.RolloutObserver{Span: ob.Span(), Metrics: e.Metrics(), Project: p.Project, Environment: p.Stack, Secrets: ob.Secrets, Observed: observed}
	return func(ev rollout.Event) {
		to.Event(ev)
		if n := e.Notifier(); n != nil {
			if ce, ok := notification(ev, p, ob.Secrets); ok {
				if sc := ob.Span().SpanContext(); sc.HasTraceID() {
					ce.TraceID = sc.TraceID().String()
				}
				// A notification outlives a cancelled rollout, as the run's does.
				nctx, cancel := context.WithTimeout(trace.ContextWithSpan(context.WithoutCancel(ctx), ob.Span()), 30*time.Second)
				if err := n.Notify(nctx, ce); err != nil {
					e.Logger().WarnContext(ctx, "notifying failed", "kind", ce.Kind, "stack", p.Stack, "error", err)
				}
				cancel()
			}
		}
		if next != nil {
			next(ev)
		}
	}
}

// notification is the chat notification of a rollout event: RolloutStep
// for a step passed, a pause or a resumption, RolloutAborted (with the
// cause) for an abort; none for the promotion, which the operation's end
// announces. Texts are masked by m.
func notification(ev rollout.Event, p engine.Program, m *mask.Masker) (chatops.Event, bool) {
	s := ev.State.Masked(m)
	ce := chatops.Event{Kind: chatops.RolloutStep, Project: p.Project, Environment: p.Stack, Operation: "rollout", Time: time.Now().UTC()}
	at := fmt.Sprintf("step %d", ev.Step) // numbered from 0, as the causes
	if ev.Step >= 0 && ev.Step < len(s.Plan) {
		at += fmt.Sprintf(" (%s) of %d", s.Plan[ev.Step], len(s.Plan))
	} else if ev.Step >= len(s.Plan) {
		at = "the promotion"
	}
	switch ev.What {
	case "step":
		ce.Summary = fmt.Sprintf("rollout of %s to %s: %s passed; the canary has %d %% of the traffic", p.Stack, s.Version, at, s.Weight)
	case "paused":
		ce.Summary = fmt.Sprintf("rollout of %s to %s paused at %s; promote to go on or abort", p.Stack, s.Version, at)
	case "resumed":
		ce.Summary = fmt.Sprintf("rollout of %s to %s resumed at %s", p.Stack, s.Version, at)
	case "aborted":
		ce.Kind = chatops.RolloutAborted
		ce.Summary = fmt.Sprintf("rollout of %s to %s aborted at %s; stable serves all the traffic", p.Stack, s.Version, at)
	case "abort failed":
		ce.Kind = chatops.RolloutAborted
		ce.Summary = fmt.Sprintf("rollout of %s to %s: aborting at %s failed; the canary may still serve, run abort again", p.Stack, s.Version, at)
	default:
		return ce, false
	}
	if s.Cause != "" {
		ce.Details = append(ce.Details, "cause: "+s.Cause)
	}
	for _, c := range s.Checks {
		if c.Step == ev.Step && len(ce.Details) < chatops.MaxDetails {
			ce.Details = append(ce.Details, telemetry.CheckLine(c, m))
		}
	}
	return ce, true
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// observability is what the engine tells the world about its operations:
// spans, metrics, chat notifications and run history.
type observability struct {
	tp       trace.TracerProvider
	metrics  *telemetry.Metrics
	notifier chatops.Notifier
	noRuns   bool
}

// tracer returns the engine's tracer (the global provider's for a nil Engine).
func (e *Engine) Tracer() trace.Tracer {
	if e == nil || e.obs.tp == nil {
		return telemetry.Tracer(otel.GetTracerProvider())
	}
	return telemetry.Tracer(e.obs.tp)
}

// Metrics returns the engine's metrics (nil records nothing).
func (e *Engine) Metrics() *telemetry.Metrics {
	if e == nil {
		return nil
	}
	return e.obs.metrics
}

// obsKey marks a context inside an observed operation.
type obsKey struct{}

// Observation is one operation in progress: its span and what its end
// records.
type Observation struct {
	e                  *Engine
	span               trace.Span
	op, project, stack string
	Secrets            *mask.Masker
	Revision           string
	start              time.Time
	// nested: ctx was already inside an operation on the same stack (Each
	// running Stack.Up, CreateEphemeral running Up), which records it.
	nested bool
	// ran is set once the engine ran (a preview, up, refresh or destroy
	// returned): an operation refused before that — an unknown
	// environment, a non-ephemeral one, bad input, a held lock — touched
	// nothing, so it leaves no run record and sends no notification.
	ran atomic.Bool
	// purged is set when the operation removed an ephemeral environment and
	// everything the backend held of it: a run record would bring it back.
	purged atomic.Bool
	// opc is the operation's context (the outer one's when nested); endOp
	// closes it once the run is recorded.
	Operation *Operation
	endOp     func()
	// Rollout, set before the end, is the rollout the operation ran: its
	// steps and measurements go into the run record.
	Rollout *rollout.State
	checks  []rollout.Check // gates checked after a deploy (Check)
}

// Observed returns ctx's operation (the outer one when nested), nil
// outside one.
func Observed(ctx context.Context) *Observation {
	o, _ := ctx.Value(obsKey{}).(*Observation)
	return o
}

// Span is the operation's span.
func (o *Observation) Span() trace.Span { return o.span }

// Notifier is the engine's notifier (nil when there is none).
func (e *Engine) Notifier() chatops.Notifier { return e.obs.notifier }

// Check records a gate checked after a deploy: span events, metrics and
// the run record.
func (o *Observation) Check(c rollout.Check) {
	telemetry.ObserveCheck(o.span, o.e.Metrics(), o.project, o.stack, c, o.Secrets)
	o.checks = append(o.checks, c)
}

// observe starts operation op on a program's stack: its span (a child of
// ctx's), and on end its metrics, run record and notification.
func (e *Engine) Observe(ctx context.Context, op string, p Program, attrs ...attribute.KeyValue) (context.Context, *Observation) {
	return e.ObserveAs(ctx, telemetry.SpanPrefix+op, op, p, attrs...)
}

// observeAs is observe with the span's name.
func (e *Engine) ObserveAs(ctx context.Context, name, op string, p Program, attrs ...attribute.KeyValue) (context.Context, *Observation) {
	if o, ok := ctx.Value(obsKey{}).(*Observation); ok && o.project == p.Project && o.stack == p.Stack {
		return ctx, &Observation{nested: true, Operation: o.Operation}
	}
	o := &Observation{e: e, op: op, project: p.Project, stack: p.Stack, Secrets: mask.New(SecretValues(p)...), start: time.Now()}
	ctx, o.Operation, o.endOp = e.Begin(ctx)
	ctx, o.span = e.Tracer().Start(ctx, name, trace.WithAttributes(append(telemetry.EnvAttributes(p.Project, p.Stack, op), attrs...)...))
	return context.WithValue(ctx, obsKey{}, o), o
}

// stage starts a stage span under ctx's operation (none outside one) and
// returns the function that ends it with the stage's error.
func (e *Engine) Stage(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	o, ok := ctx.Value(obsKey{}).(*Observation)
	if !ok {
		return ctx, func(error) {}
	}
	ctx, sp := e.Tracer().Start(ctx, telemetry.StagePrefix+name, trace.WithAttributes(attrs...))
	return ctx, func(err error) { telemetry.End(sp, err, o.Secrets) }
}

// steps records a finished engine run's resource steps: a span each under
// ctx's span, and their durations.
func (e *Engine) Steps(ctx context.Context, res *outcome.Result) {
	if o, ok := ctx.Value(obsKey{}).(*Observation); ok {
		o.ran.Store(true)
		telemetry.ResourceSpans(ctx, e.Tracer(), res)
	}
	e.Metrics().Steps(res)
}

// end records an operation that returned res and err.
func (o *Observation) End(res *outcome.Result, err error) { o.finish(res, nil, false, err) }

// endDrift records a drift check.
func (o *Observation) EndDrift(d *outcome.Drift, err error) { o.finish(nil, d, false, err) }

// EndDeploy records a deploy (or a promotion stage's) that returned res
// and err; rolledBack says its rollback restored the last-known-good.
func (o *Observation) EndDeploy(res *outcome.Result, rolledBack bool, err error) {
	o.finish(res, nil, rolledBack, err)
}

// rollbackFailer is an error that says a rollback was attempted and
// failed (a release's *ReleaseError).
type rollbackFailer interface{ RollbackFailed() bool }

// resultOf classifies an operation's outcome (runs.Succeeded, ...).
func resultOf(err error, d *outcome.Drift) string {
	switch {
	case IsPolicyBlocked(err):
		return runs.Blocked
	case IsChangesFound(err):
		return runs.Changes
	case err != nil:
		return runs.Failed
	case d != nil && d.Found():
		return runs.Changes
	}
	return runs.Succeeded
}

// finish ends the span and records the metrics, the run and the notification.
func (o *Observation) finish(res *outcome.Result, drift *outcome.Drift, rolledBack bool, err error) {
	if o.nested {
		return
	}
	defer o.endOp()
	took := time.Since(o.start)
	result, failure := resultOf(err, drift), ""
	aborted := o.Rollout != nil && o.Rollout.Phase == rollout.Aborted && err == nil
	if err != nil {
		failure = o.Secrets.String(err.Error())
	} else if aborted { // stable is back, but the release failed: never a success
		result, failure = runs.Failed, "rollout aborted: "+o.Secrets.String(o.Rollout.Cause)
	}
	var drifted []outcome.ResourceChange
	if drift != nil {
		res, drifted = drift.Refresh, drift.Resources
		o.span.SetAttributes(telemetry.AttrDrifted.Int(len(drifted)))
	}
	o.span.SetAttributes(telemetry.ResultAttributes(res)...)
	o.span.SetAttributes(telemetry.AttrResult.String(result))
	telemetry.End(o.span, err, o.Secrets)

	m := o.e.Metrics()
	m.Operation(o.project, o.stack, o.op, result, took)
	m.Policy(o.project, o.stack, res)
	if drift != nil {
		m.Drift(o.project, o.stack, len(drifted))
	}
	var rf rollbackFailer
	switch {
	case rolledBack:
		m.Rollback(o.project, o.stack, runs.Succeeded)
	case errors.As(err, &rf) && rf.RollbackFailed():
		m.Rollback(o.project, o.stack, runs.Failed)
	case o.op == "rollback":
		m.Rollback(o.project, o.stack, result)
	}
	summary := map[string]int(nil)
	if res != nil {
		summary = res.Summary
	}
	n, known := telemetry.ResourcesAfter(o.op, summary)
	if known && err == nil {
		m.Resources(o.project, o.stack, n)
	}
	if o.e == nil || !o.ran.Load() {
		return
	}
	traceID := ""
	if sc := o.span.SpanContext(); sc.HasTraceID() {
		traceID = sc.TraceID().String()
	}
	// Run history and notifications outlive a cancelled operation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(trace.ContextWithSpan(context.Background(), o.span)), 30*time.Second)
	defer cancel()
	if !o.e.obs.noRuns && !o.purged.Load() {
		rec := runs.FromResult(o.op, res, err, result, o.Secrets)
		if drift != nil {
			rec = runs.FromResult("drift", res, err, result, o.Secrets)
			rec.Changes = len(drifted)
		}
		rec.ID, rec.Project, rec.Stack, rec.Operation = statestore.NewReleaseName(o.start), o.project, o.stack, o.op
		rec.Started, rec.Duration, rec.TraceID, rec.Revision = o.start.UTC(), took, traceID, o.Revision
		if known && err == nil {
			rec.Resources = n
		}
		if rec.Error == "" {
			rec.Error = failure
		}
		rec.SetChecks(o.Rollout, o.checks, o.Secrets)
		if werr := o.e.writeRun(ctx, o.Operation, rec); werr != nil {
			o.e.log.WarnContext(ctx, "recording the run failed", "stack", o.stack, "operation", o.op, "error", werr)
		}
	}
	if o.e.obs.notifier == nil {
		return
	}
	changes := 0
	if res != nil {
		changes = res.Changes()
	}
	if drift != nil {
		changes = len(drifted)
	}
	errMsg := failure
	for _, c := range o.checks {
		errMsg += "\n" + telemetry.CheckLine(c, o.Secrets)
	}
	ev := chatops.Event{Project: o.project, Environment: o.stack, Operation: o.op, Changes: changes, Time: time.Now().UTC(), TraceID: traceID,
		Summary: telemetry.Summary(o.op, o.stack, changes, took, failure != ""), Details: telemetry.Details(res, drifted, errMsg, chatops.MaxDetails)}
	var kinds []chatops.Kind
	switch {
	case result == runs.Blocked:
		kinds = append(kinds, chatops.PolicyBlocked)
	case err != nil && !IsChangesFound(err):
		kinds = append(kinds, chatops.RunFailed)
	case drift != nil && drift.Found():
		kinds = append(kinds, chatops.DriftDetected)
	case aborted: // notified as it happened (RolloutAborted); the rollback below
	case o.op == "rollback":
		kinds = append(kinds, chatops.RollbackDone)
	case slices.Contains([]string{"up", "destroy", "deploy", "promote", "rollout", "ephemeral-create", "ephemeral-destroy"}, o.op):
		kinds = append(kinds, chatops.RunSucceeded)
	}
	if rolledBack {
		kinds = append(kinds, chatops.RollbackDone)
	}
	for _, k := range kinds {
		ev.Kind = k
		if nerr := o.e.obs.notifier.Notify(ctx, ev); nerr != nil {
			o.e.log.WarnContext(ctx, "notifying failed", "kind", k, "stack", o.stack, "error", nerr)
		}
	}
}

// writeRun stores one run record.
func (e *Engine) writeRun(ctx context.Context, opc *Operation, rec runs.Record) error {
	st, _, err := opc.Records(ctx)
	if err != nil {
		return err
	}
	return runs.Write(ctx, st, rec)
}

// SecretValues lists a program's secret configuration values, and the
// string values inside one that holds a JSON object (Slipway's secrets).
func SecretValues(p Program) []string {
	var out []string
	for _, v := range p.Config {
		if !v.Secret {
			continue
		}
		out = append(out, v.Value)
		var m map[string]any
		if json.Unmarshal([]byte(v.Value), &m) == nil {
			for _, x := range m {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// MarkPurged tells ctx's operation that it removed an ephemeral environment
// and everything the backend held of it: writing its run record would
// bring the environment back, so none is written.
func MarkPurged(ctx context.Context) {
	if o, ok := ctx.Value(obsKey{}).(*Observation); ok {
		o.purged.Store(true)
	}
}

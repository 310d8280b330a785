// Package telemetry is Slipway's OpenTelemetry tracing, Prometheus metrics
// and structured-log plumbing: the span and attribute names the engine
// uses, the Metrics it records, a slog handler that adds trace and span
// IDs, and the setup a command line needs (a TracerProvider from the
// standard OTEL_* variables, a CI job's TRACEPARENT, a metrics file and a
// Pushgateway push).
//
// The package creates no global state: it never sets the global
// TracerProvider or registers on the global Prometheus registry.
package telemetry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
)

// TracerName is the instrumentation scope of Slipway's spans.
const TracerName = "github.com/slipwayhq/slipway/automation"

// Span names.
const (
	// SpanPrefix starts an operation span's name: "slipway.up", "slipway.drift", ...
	SpanPrefix = "slipway."
	// StagePrefix starts a stage span's name: "slipway.stage.apply", ...
	StagePrefix = "slipway.stage."
	// SpanResource is the span of one resource step.
	SpanResource = "slipway.resource"
	// SpanPromoteStage is the span of one promotion stage.
	SpanPromoteStage = "slipway.promote.stage"
)

// Stages of an operation (the suffix of a stage span's name).
const (
	StageValidate = "validate"
	StageOpen     = "open"
	StageRecover  = "recover"
	StagePolicy   = "policy"
	StagePreview  = "preview"
	StageApply    = "apply"
	StageRefresh  = "refresh"
	StageSmoke    = "smoke"
	StageRollback = "rollback"
	StageApproval = "approval"
	StageDeploy   = "deploy"
	StageDestroy  = "destroy"
)

// Attribute keys.
const (
	AttrProject     = attribute.Key("slipway.project")
	AttrEnvironment = attribute.Key("slipway.environment")
	AttrOperation   = attribute.Key("slipway.operation")
	AttrResult      = attribute.Key("slipway.result")
	AttrChanges     = attribute.Key("slipway.changes")
	// AttrChangePrefix starts the per-operation change counts: slipway.change.create, ...
	AttrChangePrefix = "slipway.change."
	AttrStage        = attribute.Key("slipway.stage")
	AttrDrifted      = attribute.Key("slipway.drifted")
	AttrViolations   = attribute.Key("slipway.policy.violations")
	AttrResourceType = attribute.Key("pulumi.resource.type")
	AttrResourceURN  = attribute.Key("pulumi.resource.urn")
	AttrResourceOp   = attribute.Key("pulumi.resource.op")
)

// Tracer returns Slipway's tracer of tp.
func Tracer(tp trace.TracerProvider) trace.Tracer { return tp.Tracer(TracerName) }

// EnvAttributes are the attributes naming an environment and an operation.
func EnvAttributes(project, env, op string) []attribute.KeyValue {
	return []attribute.KeyValue{AttrProject.String(project), AttrEnvironment.String(env), AttrOperation.String(op)}
}

// ResultAttributes are a result's change counts (total and per operation)
// and its policy violations.
func ResultAttributes(res *outcome.Result) []attribute.KeyValue {
	if res == nil {
		return nil
	}
	out := []attribute.KeyValue{AttrChanges.Int(res.Changes())}
	for op, n := range res.Summary {
		out = append(out, attribute.Int(AttrChangePrefix+op, n))
	}
	if len(res.Policy) > 0 {
		out = append(out, AttrViolations.Int(len(res.Policy)))
	}
	return out
}

// ResourceSpans adds one SpanResource span per resource step of res whose
// start the engine reported, as children of ctx's span, starting at the
// step's Started and ending at Started+Duration, so the span's duration is
// the step's Duration.
func ResourceSpans(ctx context.Context, tr trace.Tracer, res *outcome.Result) {
	if res == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	for _, r := range res.Resources {
		if r.Started.IsZero() {
			continue
		}
		_, sp := tr.Start(ctx, SpanResource, trace.WithTimestamp(r.Started), trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(AttrResourceType.String(r.Type), AttrResourceURN.String(r.URN), AttrResourceOp.String(r.Op)))
		sp.End(trace.WithTimestamp(r.Started.Add(r.Duration)))
	}
}

// End ends a span with err's outcome: status Error and the error recorded
// (its message masked by m) when err is not nil, Ok otherwise. A nil m
// still masks ciphertexts and serialised secrets (see package mask).
func End(sp trace.Span, err error, m *mask.Masker) {
	if err != nil {
		msg := m.String(err.Error())
		sp.RecordError(maskedError(msg))
		sp.SetStatus(codes.Error, firstLine(msg))
	} else {
		sp.SetStatus(codes.Ok, "")
	}
	sp.End()
}

// maskedError is an error message after masking.
type maskedError string

func (e maskedError) Error() string { return string(e) }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// Summary is the one-line summary of an operation, e.g.
// "up of dev: 3 changes in 2.1s" or "up of dev failed after 1.2s".
func Summary(op, env string, changes int, d time.Duration, failed bool) string {
	d = d.Round(100 * time.Millisecond)
	if failed {
		return fmt.Sprintf("%s of %s failed after %s", op, env, d)
	}
	return fmt.Sprintf("%s of %s: %d change(s) in %s", op, env, changes, d)
}

// Details are the detail lines of a notification, at most max: the error's
// lines, the policy findings, the drifted resources with the paths of
// their changed properties (never values).
func Details(res *outcome.Result, drifted []outcome.ResourceChange, errMsg string, max int) []string {
	var out []string
	add := func(s string) {
		if len(out) < max && s != "" {
			out = append(out, s)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(errMsg), "\n") {
		add(strings.TrimSpace(l))
	}
	if res != nil && errMsg == "" {
		for _, f := range res.Policy {
			add(fmt.Sprintf("%s/%s (%s): %s", f.Pack, f.Policy, f.Enforcement, outcome.MessageLine(f.Message)))
		}
	}
	for _, r := range drifted {
		var paths []string
		for _, p := range r.Properties {
			paths = append(paths, p.Path)
		}
		if len(paths) == 0 {
			paths = r.Diffs
		}
		add(fmt.Sprintf("%s %s: %s", r.Type, r.URN, strings.Join(paths, ", ")))
	}
	return out
}

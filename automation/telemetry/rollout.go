package telemetry

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/rollout"
)

// Span event names of a rollout, added to its operation's span.
const (
	// EventRolloutPrefix starts the name of the event of a rollout's
	// change: "slipway.rollout.step", "slipway.rollout.paused",
	// "slipway.rollout.promoted", "slipway.rollout.aborted",
	// "slipway.rollout.resumed", "slipway.rollout.abort failed".
	EventRolloutPrefix = "slipway.rollout."
	// EventAnalysis is one gate's check (an analysis run): its verdict.
	EventAnalysis = "slipway.analysis"
	// EventMeasurement is one measurement of an analysis, at its time.
	EventMeasurement = "slipway.analysis.measurement"
)

// Attribute keys of rollout events.
const (
	AttrRolloutStep     = attribute.Key("slipway.rollout.step")
	AttrRolloutStepKind = attribute.Key("slipway.rollout.step.kind")
	AttrRolloutPlan     = attribute.Key("slipway.rollout.step.plan")
	AttrRolloutWeight   = attribute.Key("slipway.rollout.weight")
	AttrRolloutPhase    = attribute.Key("slipway.rollout.phase")
	AttrRolloutVersion  = attribute.Key("slipway.rollout.version")
	AttrRolloutCause    = attribute.Key("slipway.rollout.cause")
	AttrAnalysisMetric  = attribute.Key("slipway.analysis.metric")
	AttrAnalysisVerdict = attribute.Key("slipway.analysis.verdict")
	AttrAnalysisValue   = attribute.Key("slipway.analysis.value")
	AttrAnalysisError   = attribute.Key("slipway.analysis.error")
	AttrAnalysisCount   = attribute.Key("slipway.analysis.measurements")
	AttrAnalysisCond    = attribute.Key("slipway.analysis.condition")
)

// Step results of RolloutStepsTotal.
const (
	StepSucceeded = "succeeded"
	StepPaused    = "paused"
	StepFailed    = "failed"
)

// StepPromotion is the step kind of a rollout's final promotion.
const StepPromotion = "promotion"

// RolloutObserver turns a rollout's events (rollout.Options.OnEvent) into
// span events on the rollout's operation span and metrics. Texts are
// masked by Secrets. Give each call of rollout.Run its own observer.
type RolloutObserver struct {
	// Span is the rollout operation's span (nil adds no events).
	Span trace.Span
	// Metrics records the steps, measurements and weight (nil records none).
	Metrics *Metrics
	// Project and Environment label the metrics.
	Project, Environment string
	// Secrets masks causes and errors (nil still masks engine secrets).
	Secrets *mask.Masker
	// Observed is how many of the record's checks were already observed
	// (the rollout's run observed them before an explicit abort); a
	// "resumed" event sets it to all of them.
	Observed int
}

// stepKind names step i of s's plan ("promotion" past the end).
func stepKind(s rollout.State, i int) (kind, plan string) {
	if i < 0 || i >= len(s.Plan) {
		return StepPromotion, StepPromotion
	}
	return rollout.StepKind(s.Plan[i]), s.Plan[i]
}

// Event observes one rollout event.
func (o *RolloutObserver) Event(ev rollout.Event) {
	s := ev.State
	if ev.What == "resumed" {
		o.Observed = len(s.Checks) // what ran before the restart was observed then
	}
	for _, c := range s.Checks[min(o.Observed, len(s.Checks)):] {
		o.check(c)
	}
	o.Observed = len(s.Checks)
	kind, plan := stepKind(s, ev.Step)
	if ev.What == "promoted" {
		kind, plan = StepPromotion, StepPromotion
	}
	attrs := []attribute.KeyValue{AttrRolloutStep.Int(ev.Step), AttrRolloutStepKind.String(kind), AttrRolloutPlan.String(o.Secrets.String(plan)),
		AttrRolloutWeight.Int(s.Weight), AttrRolloutPhase.String(string(s.Phase)), AttrRolloutVersion.String(o.Secrets.String(s.Version))}
	if s.Cause != "" {
		attrs = append(attrs, AttrRolloutCause.String(o.Secrets.String(s.Cause)))
	}
	o.event(EventRolloutPrefix+ev.What, attrs)
	switch ev.What {
	case "step":
		o.Metrics.RolloutStep(o.Project, o.Environment, kind, StepSucceeded)
	case "paused":
		o.Metrics.RolloutStep(o.Project, o.Environment, kind, StepPaused)
	case "promoted":
		o.Metrics.RolloutStep(o.Project, o.Environment, kind, StepSucceeded)
	case "aborted", "abort failed":
		o.Metrics.RolloutStep(o.Project, o.Environment, kind, StepFailed)
	}
	if ev.What != "abort failed" {
		o.Metrics.CanaryWeight(o.Project, o.Environment, s.Weight)
	}
}

// event adds a span event.
func (o *RolloutObserver) event(name string, attrs []attribute.KeyValue, opts ...trace.EventOption) {
	if o.Span == nil {
		return
	}
	o.Span.AddEvent(name, append(opts, trace.WithAttributes(attrs...))...)
}

// check observes one gate's check and, for an analysis, its measurements.
func (o *RolloutObserver) check(c rollout.Check) {
	ObserveCheck(o.Span, o.Metrics, o.Project, o.Environment, c, o.Secrets)
}

// ObserveCheck adds a gate's check to sp (an EventAnalysis event and, for
// an analysis, one EventMeasurement event per measurement at its time)
// and records its measurements in m. A release's gates after its deploy
// and a rollout's analysis steps are observed the same way.
func ObserveCheck(sp trace.Span, m *Metrics, project, env string, c rollout.Check, secrets *mask.Masker) {
	c = c.Masked(secrets)
	attrs := []attribute.KeyValue{AttrRolloutStep.Int(c.Step), AttrAnalysisMetric.String(c.Gate), AttrAnalysisVerdict.String(string(c.Verdict))}
	if c.Error != "" {
		attrs = append(attrs, AttrAnalysisError.String(c.Error))
	}
	res, isAnalysis := c.Analysis()
	if isAnalysis {
		attrs = append(attrs, AttrAnalysisCount.Int(len(res.Measurements)), AttrAnalysisCond.String(res.Condition))
	}
	if sp != nil {
		sp.AddEvent(EventAnalysis, trace.WithTimestamp(c.At), trace.WithAttributes(attrs...))
	}
	if !isAnalysis {
		return
	}
	for _, ms := range res.Measurements {
		a := []attribute.KeyValue{AttrRolloutStep.Int(c.Step), AttrAnalysisMetric.String(c.Gate), AttrAnalysisVerdict.String(string(ms.Phase))}
		if ms.Value != nil {
			a = append(a, AttrAnalysisValue.Float64(*ms.Value))
		}
		if ms.Error != "" {
			a = append(a, AttrAnalysisError.String(ms.Error))
		}
		if sp != nil {
			sp.AddEvent(EventMeasurement, trace.WithTimestamp(ms.Time), trace.WithAttributes(a...))
		}
		m.Measurement(project, env, c.Gate, string(ms.Phase), ms.Value)
	}
}

// CheckLine describes a check in one line for notifications, e.g.
// "error-rate: Failed (3 measurements: 0.01 Successful, 0.2 Failed, 0.3
// Failed)"; texts are masked by secrets.
func CheckLine(c rollout.Check, secrets *mask.Masker) string {
	c = c.Masked(secrets)
	line := fmt.Sprintf("step %d: %s: %s", c.Step, c.Gate, c.Verdict)
	if res, ok := c.Analysis(); ok && len(res.Measurements) > 0 {
		var ms []string
		for _, m := range res.Measurements {
			ms = append(ms, MeasurementText(m))
		}
		line += fmt.Sprintf(" (%d measurements: %s)", len(res.Measurements), strings.Join(ms, ", "))
	}
	if c.Error != "" {
		line += ": " + firstLine(c.Error)
	}
	return line
}

// MeasurementText is a measurement in a few words: "0.01 Successful",
// "no value Inconclusive".
func MeasurementText(m analysis.Measurement) string {
	if m.Value == nil {
		return "no value " + string(m.Phase)
	}
	return fmt.Sprintf("%g %s", *m.Value, m.Phase)
}

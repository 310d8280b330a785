package telemetry

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/automation/outcome"
)

// Metric names (the Grafana dashboard and other packages use them).
const (
	// OperationDuration is a histogram of operation wall times
	// {project, environment, operation, result}.
	OperationDuration = "slipway_operation_duration_seconds"
	// OperationsTotal counts operations {project, environment, operation, result}.
	OperationsTotal = "slipway_operations_total"
	// ResourceStepDuration is a histogram of resource step durations
	// {type, operation}; operation is the step's (create, update, ...).
	ResourceStepDuration = "slipway_resource_step_duration_seconds"
	// DriftDetectedTotal counts drift checks that found drift {project, environment}.
	DriftDetectedTotal = "slipway_drift_detected_total"
	// DriftedResources is the number of drifted resources the last check
	// found {project, environment}.
	DriftedResources = "slipway_drifted_resources"
	// PolicyViolationsTotal counts policy findings
	// {project, environment, pack, policy, enforcement}.
	PolicyViolationsTotal = "slipway_policy_violations_total"
	// RollbacksTotal counts rollbacks (automatic and explicit) {project, environment, result}.
	RollbacksTotal = "slipway_rollbacks_total"
	// ResourcesGauge is the number of resources in an environment after its
	// last operation that changed or read it {project, environment}.
	ResourcesGauge = "slipway_resources"
	// RolloutStepsTotal counts the steps of rollouts by kind (weight,
	// pause, analysis, promotion) and result (succeeded, paused, failed)
	// {project, environment, step, result}.
	RolloutStepsTotal = "slipway_rollout_steps_total"
	// CanaryWeight is the share of the traffic (percent) a rollout's
	// canary gets now; 0 once promoted or aborted {project, environment}.
	CanaryWeight = "slipway_rollout_canary_weight"
	// AnalysisMeasurementsTotal counts analysis measurements by metric and
	// verdict (Successful, Failed, Inconclusive, Error)
	// {project, environment, metric, verdict}.
	AnalysisMeasurementsTotal = "slipway_analysis_measurements_total"
	// AnalysisValue is the last value an analysis measured
	// {project, environment, metric}.
	AnalysisValue = "slipway_analysis_value"
)

// Label names.
const (
	LabelProject     = "project"
	LabelEnvironment = "environment"
	LabelOperation   = "operation"
	LabelResult      = "result"
	LabelType        = "type"
	LabelPack        = "pack"
	LabelPolicy      = "policy"
	LabelEnforcement = "enforcement"
	LabelStep        = "step"
	LabelMetric      = "metric"
	LabelVerdict     = "verdict"
)

// Metrics are Slipway's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	opDuration *prometheus.HistogramVec
	ops        *prometheus.CounterVec
	steps      *prometheus.HistogramVec
	drift      *prometheus.CounterVec
	drifted    *prometheus.GaugeVec
	violations *prometheus.CounterVec
	rollbacks  *prometheus.CounterVec
	resources  *prometheus.GaugeVec
	rsteps     *prometheus.CounterVec
	weight     *prometheus.GaugeVec
	measured   *prometheus.CounterVec
	value      *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them on reg (never on the
// global registry by itself). Registering on a registry that already holds
// them (a second NewMetrics in one process) reuses the registered series.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	env := []string{LabelProject, LabelEnvironment}
	op := []string{LabelProject, LabelEnvironment, LabelOperation, LabelResult}
	m := &Metrics{
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: OperationDuration,
			Help:    "Wall time of Slipway operations (preview, up, drift, deploy, ...).",
			Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600}}, op),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: OperationsTotal,
			Help: "Slipway operations by result (succeeded, failed, blocked, changes)."}, op),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ResourceStepDuration,
			Help:    "Time from the engine starting a resource step to its outputs, by resource type and step operation.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}, []string{LabelType, LabelOperation}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Name: DriftDetectedTotal,
			Help: "Drift checks that found live state differing from the recorded state."}, env),
		drifted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: DriftedResources,
			Help: "Resources whose live state differed from the recorded state at the last drift check."}, env),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: PolicyViolationsTotal,
			Help: "Policy findings reported by the engine, by pack, policy and enforcement."},
			[]string{LabelProject, LabelEnvironment, LabelPack, LabelPolicy, LabelEnforcement}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: RollbacksTotal,
			Help: "Rollbacks to a last-known-good release (automatic after a failed deploy, or explicit), by result."},
			[]string{LabelProject, LabelEnvironment, LabelResult}),
		resources: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ResourcesGauge,
			Help: "Resources in an environment after its last operation."}, env),
		rsteps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: RolloutStepsTotal,
			Help: "Steps of progressive rollouts (weight, pause, analysis, promotion) by result (succeeded, paused, failed)."},
			[]string{LabelProject, LabelEnvironment, LabelStep, LabelResult}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: CanaryWeight,
			Help: "Share of the traffic (percent) the canary of an environment's rollout gets now."}, env),
		measured: prometheus.NewCounterVec(prometheus.CounterOpts{Name: AnalysisMeasurementsTotal,
			Help: "Measurements of rollout and release analyses, by metric and verdict."},
			[]string{LabelProject, LabelEnvironment, LabelMetric, LabelVerdict}),
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: AnalysisValue,
			Help: "Last value measured by an analysis metric."}, []string{LabelProject, LabelEnvironment, LabelMetric}),
	}
	var err error
	m.opDuration, err = register(reg, m.opDuration, err)
	m.ops, err = register(reg, m.ops, err)
	m.steps, err = register(reg, m.steps, err)
	m.drift, err = register(reg, m.drift, err)
	m.drifted, err = register(reg, m.drifted, err)
	m.violations, err = register(reg, m.violations, err)
	m.rollbacks, err = register(reg, m.rollbacks, err)
	m.resources, err = register(reg, m.resources, err)
	m.rsteps, err = register(reg, m.rsteps, err)
	m.weight, err = register(reg, m.weight, err)
	m.measured, err = register(reg, m.measured, err)
	m.value, err = register(reg, m.value, err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the collector reg already holds.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, prev error) (C, error) {
	if prev != nil {
		return c, prev
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// Operation records one operation's duration and outcome.
func (m *Metrics) Operation(project, env, op, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.opDuration.WithLabelValues(project, env, op, result).Observe(d.Seconds())
	m.ops.WithLabelValues(project, env, op, result).Inc()
}

// Steps records the durations of the resource steps of an operation that
// applied them (a preview's planned steps are not counted).
func (m *Metrics) Steps(res *outcome.Result) {
	if m == nil || res == nil || res.Operation == "preview" || res.Operation == "refresh-preview" {
		return
	}
	for _, r := range res.Resources {
		if !r.Started.IsZero() && r.Duration > 0 {
			m.steps.WithLabelValues(r.Type, r.Op).Observe(r.Duration.Seconds())
		}
	}
}

// Policy counts a result's policy findings.
func (m *Metrics) Policy(project, env string, res *outcome.Result) {
	if m == nil || res == nil {
		return
	}
	for _, f := range res.Policy {
		m.violations.WithLabelValues(project, env, f.Pack, f.Policy, string(f.Enforcement)).Inc()
	}
}

// Drift records a drift check that found n drifted resources.
func (m *Metrics) Drift(project, env string, n int) {
	if m == nil {
		return
	}
	if n > 0 {
		m.drift.WithLabelValues(project, env).Inc()
	}
	m.drifted.WithLabelValues(project, env).Set(float64(n))
}

// Rollback counts one rollback with its result.
func (m *Metrics) Rollback(project, env, result string) {
	if m == nil {
		return
	}
	m.rollbacks.WithLabelValues(project, env, result).Inc()
}

// Resources sets an environment's resource count.
func (m *Metrics) Resources(project, env string, n int) {
	if m == nil {
		return
	}
	m.resources.WithLabelValues(project, env).Set(float64(n))
}

// RolloutStep counts one rollout step of kind with its result.
func (m *Metrics) RolloutStep(project, env, kind, result string) {
	if m == nil {
		return
	}
	m.rsteps.WithLabelValues(project, env, kind, result).Inc()
}

// CanaryWeight sets the canary's share of the traffic of an environment.
func (m *Metrics) CanaryWeight(project, env string, weight int) {
	if m == nil {
		return
	}
	m.weight.WithLabelValues(project, env).Set(float64(weight))
}

// Measurement counts one analysis measurement and, when it has a value,
// sets the metric's last value.
func (m *Metrics) Measurement(project, env, metric, verdict string, value *float64) {
	if m == nil {
		return
	}
	m.measured.WithLabelValues(project, env, metric, verdict).Inc()
	if value != nil {
		m.value.WithLabelValues(project, env, metric).Set(*value)
	}
}

// ResourcesAfter returns how many resources an environment holds after an
// operation, from its summary, and whether the operation says so (a
// preview does not; a failed operation's summary is incomplete).
func ResourcesAfter(op string, summary map[string]int) (int, bool) {
	switch op {
	case "destroy", "ephemeral-destroy":
		return 0, true
	case "up", "refresh", "refresh-preview", "drift", "deploy", "rollback", "promote", "rollout", "ephemeral-create":
	default:
		return 0, false
	}
	if len(summary) == 0 {
		return 0, false
	}
	n := 0
	for k, v := range summary {
		switch k {
		case "delete", "discard", "delete-replaced", "read-discard", "discard-replaced", "remove-pending-replace":
		default:
			n += v
		}
	}
	return n, true
}

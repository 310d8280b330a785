package telemetry_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// memStore keeps rollout records in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Get(_ context.Context, kind, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[kind+"/"+name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func (s *memStore) Put(_ context.Context, kind, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[kind+"/"+name] = data
	return nil
}

func (s *memStore) Create(ctx context.Context, kind, name string, data []byte) error {
	if _, err := s.Get(ctx, kind, name); err == nil {
		return fs.ErrExist
	}
	return s.Put(ctx, kind, name, data)
}

// valuesThen is a Func provider giving the values in turn, then err.
func valuesThen(err error, values ...float64) analysis.Func {
	var mu sync.Mutex
	n := 0
	return func(context.Context) (float64, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n > len(values) {
			return 0, err
		}
		return values[n-1], nil
	}
}

func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		out[kv.Key] = kv.Value
	}
	return out
}

// TestRolloutObserver_SpanEventsAndMetricsOfEveryStepAndMeasurement: a
// canary whose second analysis fails (its provider errs with a secret in
// the message) leaves on its span an event per step, per analysis and per
// measurement (value, verdict, time), the abort with its cause, and the
// metrics of the steps, measurements, last value and weight; no event
// carries the secret.
func TestRolloutObserver_SpanEventsAndMetricsOfEveryStepAndMeasurement(t *testing.T) {
	const secret = "hunter2-x"
	cond, err := analysis.ParseCondition("result < 0.1")
	require.NoError(t, err)
	metric := analysis.Metric{Name: "error-rate", Provider: valuesThen(errors.New("token "+secret+" refused"), 0.01, 0.02),
		Count: 2, Interval: time.Millisecond, SuccessCondition: cond}
	gate := rollout.AnalysisGate(metric)
	steps := []rollout.Step{{Weight: 10}, {Gates: []rollout.Gate{gate}}, {Weight: 50}, {Gates: []rollout.Gate{gate}}, {Weight: 100}}
	var weights []int
	target := rollout.Funcs{
		SetWeightFunc: func(_ context.Context, w int) error { weights = append(weights, w); return nil },
		PromoteFunc:   func(context.Context) error { return errors.New("promoted a failed canary") },
		AbortFunc:     func(context.Context) error { return nil },
	}

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, sp := tp.Tracer("x").Start(context.Background(), "slipway.rollout")
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	require.NoError(t, err)
	obs := &telemetry.RolloutObserver{Span: sp, Metrics: m, Project: "shop", Environment: "dev", Secrets: mask.New(secret)}
	st, err := rollout.Run(context.Background(), &memStore{}, "shop/dev", "v2", target, steps, rollout.Options{OnEvent: obs.Event})
	require.NoError(t, err)
	sp.End()
	require.Equal(t, rollout.Aborted, st.Phase)
	assert.Equal(t, []int{10, 50}, weights)

	ended := rec.Ended()
	require.Len(t, ended, 1)
	var names []string
	var measurements, analyses []map[attribute.Key]attribute.Value
	var aborted map[attribute.Key]attribute.Value
	for _, ev := range ended[0].Events() {
		names = append(names, ev.Name)
		for _, a := range ev.Attributes {
			assert.NotContains(t, a.Value.Emit(), secret, "event %s, attribute %s", ev.Name, a.Key)
		}
		switch ev.Name {
		case telemetry.EventMeasurement:
			measurements = append(measurements, attrs(ev.Attributes))
			assert.False(t, ev.Time.IsZero())
		case telemetry.EventAnalysis:
			analyses = append(analyses, attrs(ev.Attributes))
		case telemetry.EventRolloutPrefix + "aborted":
			aborted = attrs(ev.Attributes)
		}
	}
	assert.Equal(t, []string{
		"slipway.rollout.step",
		telemetry.EventAnalysis, telemetry.EventMeasurement, telemetry.EventMeasurement, "slipway.rollout.step",
		"slipway.rollout.step",
		telemetry.EventAnalysis, telemetry.EventMeasurement, "slipway.rollout.aborted",
	}, names)
	require.Len(t, measurements, 3)
	assert.Equal(t, 0.01, measurements[0][telemetry.AttrAnalysisValue].AsFloat64())
	assert.Equal(t, "Successful", measurements[0][telemetry.AttrAnalysisVerdict].AsString())
	assert.Equal(t, 0.02, measurements[1][telemetry.AttrAnalysisValue].AsFloat64())
	assert.Equal(t, int64(1), measurements[1][telemetry.AttrRolloutStep].AsInt64())
	assert.Equal(t, "Error", measurements[2][telemetry.AttrAnalysisVerdict].AsString())
	_, hasValue := measurements[2][telemetry.AttrAnalysisValue]
	assert.False(t, hasValue, "an error has no value")
	assert.Equal(t, "token [secret] refused", measurements[2][telemetry.AttrAnalysisError].AsString())
	require.Len(t, analyses, 2)
	assert.Equal(t, "Successful", analyses[0][telemetry.AttrAnalysisVerdict].AsString())
	assert.Equal(t, "Failed", analyses[1][telemetry.AttrAnalysisVerdict].AsString())
	assert.Equal(t, "error-rate", analyses[1][telemetry.AttrAnalysisMetric].AsString())
	require.NotNil(t, aborted)
	assert.Equal(t, int64(3), aborted[telemetry.AttrRolloutStep].AsInt64())
	assert.Equal(t, "analysis", aborted[telemetry.AttrRolloutStepKind].AsString())
	assert.True(t, strings.HasPrefix(aborted[telemetry.AttrRolloutCause].AsString(), "step 3: analysis error-rate failed"), aborted[telemetry.AttrRolloutCause].AsString())

	value := func(name string, labels map[string]string) float64 {
		return testutil.ToFloat64(counter(t, reg, name, labels))
	}
	assert.Equal(t, 2.0, value(telemetry.RolloutStepsTotal, map[string]string{"step": "weight", "result": "succeeded"}))
	assert.Equal(t, 1.0, value(telemetry.RolloutStepsTotal, map[string]string{"step": "analysis", "result": "succeeded"}))
	assert.Equal(t, 1.0, value(telemetry.RolloutStepsTotal, map[string]string{"step": "analysis", "result": "failed"}))
	assert.Equal(t, 2.0, value(telemetry.AnalysisMeasurementsTotal, map[string]string{"metric": "error-rate", "verdict": "Successful"}))
	assert.Equal(t, 1.0, value(telemetry.AnalysisMeasurementsTotal, map[string]string{"metric": "error-rate", "verdict": "Error"}))
	assert.Equal(t, 0.02, value(telemetry.AnalysisValue, map[string]string{"metric": "error-rate"}))
	assert.Equal(t, 0.0, value(telemetry.CanaryWeight, map[string]string{"project": "shop", "environment": "dev"}), "aborted: no traffic to the canary")
	n, err := testutil.GatherAndCount(reg, telemetry.RolloutStepsTotal)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "weight/succeeded, analysis/succeeded and analysis/failed; no promotion")
}

// TestRolloutObserver_WeightGaugeFollowsTheSteps: the canary-weight gauge
// is the weight of the last step.
func TestRolloutObserver_WeightGaugeFollowsTheSteps(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	require.NoError(t, err)
	obs := &telemetry.RolloutObserver{Metrics: m, Project: "shop", Environment: "dev"}
	obs.Event(rollout.Event{Step: 0, What: "step", State: rollout.State{Plan: []string{"weight 10", "pause until promoted"}, Weight: 10, Phase: rollout.Progressing}})
	assert.Equal(t, 10.0, testutil.ToFloat64(counter(t, reg, telemetry.CanaryWeight, nil)))
	obs.Event(rollout.Event{Step: 1, What: "paused", State: rollout.State{Plan: []string{"weight 10", "pause until promoted"}, Weight: 10, Phase: rollout.Paused}})
	assert.Equal(t, 1.0, testutil.ToFloat64(counter(t, reg, telemetry.RolloutStepsTotal, map[string]string{"step": "pause", "result": "paused"})))
	assert.Equal(t, 10.0, testutil.ToFloat64(counter(t, reg, telemetry.CanaryWeight, nil)))
}

package automation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// errorRate is an analysis of an error rate whose Func provider gives the
// values in turn, then fails with err.
func errorRate(t *testing.T, err error, values ...float64) rollout.Gate {
	t.Helper()
	cond, cerr := analysis.ParseCondition("result < 0.05")
	require.NoError(t, cerr)
	var mu sync.Mutex
	n := 0
	return rollout.AnalysisGate(analysis.Metric{Name: "error-rate", Count: 2, Interval: time.Millisecond, SuccessCondition: cond,
		Provider: analysis.Func(func(context.Context) (float64, error) {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n > len(values) {
				return 0, err
			}
			return values[n-1], nil
		})})
}

// withSecret is p with a secret configuration value.
func withSecret(p automation.Program, secret string) automation.Program {
	p.Config = map[string]automation.ConfigValue{"apikey": {Value: secret, Secret: true}}
	return p
}

// gaugeOrCounter returns the value of the series of name whose labels
// include labels.
func gaugeOrCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestRollout_ObservedThroughTheEngine: a rollout through Engine.Rollout
// whose second analysis fails (its provider's error names a secret of
// the program) notifies each step, then the abort with its cause and the
// measurements, then the automatic rollback; its span carries an event
// per step and per measurement, the metrics count them, and the run
// record keeps every measurement — never the secret.
func TestRollout_ObservedThroughTheEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const project, stack, apiKey = "rollouttest", "rollout-obs", "api-key-0a9b8c7d6e"
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	require.NoError(t, err)
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec, automation.WithTracerProvider(tp), automation.WithMetrics(m))
	lookup := func(v string) (automation.Program, error) {
		return withSecret(exporting(project, stack, v), apiKey), nil
	}
	v1, _ := lookup("v1")
	_, err = e.Deploy(ctx, automation.Release{Version: "v1", Program: v1}, lookup)
	require.NoError(t, err)
	rec.take()

	v2, _ := lookup("v2")
	gate := errorRate(t, fmt.Errorf("metrics endpoint refused key %s", apiKey), 0.01, 0.02)
	st, err := e.Rollout(ctx, automation.Canary{
		Release: automation.Release{Version: "v2", Program: v2},
		At:      func(w int) (automation.Program, error) { return lookup(fmt.Sprintf("v2-at-%d", w)) },
		Steps:   []rollout.Step{{Weight: 10}, {Gates: []rollout.Gate{gate}}, {Weight: 50}, {Gates: []rollout.Gate{gate}}, {Weight: 100}},
	}, lookup)
	require.NoError(t, err)
	require.Equal(t, rollout.Aborted, st.Phase)

	// Notifications: each step, the abort with its cause, the rollback.
	evs := rec.take()
	require.Equal(t, []chatops.Kind{chatops.RolloutStep, chatops.RolloutStep, chatops.RolloutStep, chatops.RolloutAborted, chatops.RollbackDone}, kinds(evs))
	assert.Contains(t, evs[0].Summary, "step 0 (weight 10) of 5 passed")
	assert.Contains(t, strings.Join(evs[1].Details, "\n"), "error-rate: Successful (2 measurements: 0.01 Successful, 0.02 Successful)")
	aborted := strings.Join(evs[3].Details, "\n")
	assert.Contains(t, evs[3].Summary, "aborted at step 3 (analysis error-rate) of 5")
	assert.Contains(t, aborted, "cause: step 3: analysis error-rate failed")
	assert.Contains(t, aborted, "no value Error")
	assert.Contains(t, strings.Join(evs[4].Details, "\n"), "rollout aborted: step 3: analysis error-rate failed")
	for _, ev := range evs {
		assert.Equal(t, stack, ev.Environment)
		assert.Equal(t, "rollout", ev.Operation)
		assert.Len(t, ev.TraceID, 32)
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		assert.NotContains(t, string(b), apiKey, ev.Kind)
	}

	// Span events on the rollout's span.
	var span *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == telemetry.SpanPrefix+"rollout" {
			span = &s
		}
	}
	require.NotNil(t, span, "the rollout's span")
	var names []string
	var values []float64
	for _, ev := range span.Events {
		names = append(names, ev.Name)
		for _, a := range ev.Attributes {
			assert.NotContains(t, a.Value.Emit(), apiKey, ev.Name)
			if ev.Name == telemetry.EventMeasurement && a.Key == telemetry.AttrAnalysisValue {
				values = append(values, a.Value.AsFloat64())
			}
		}
	}
	assert.Equal(t, []string{"slipway.rollout.step", telemetry.EventAnalysis, telemetry.EventMeasurement, telemetry.EventMeasurement, "slipway.rollout.step",
		"slipway.rollout.step", telemetry.EventAnalysis, telemetry.EventMeasurement, "slipway.rollout.aborted"}, names)
	assert.Equal(t, []float64{0.01, 0.02}, values)

	// Metrics.
	labels := func(kv ...string) map[string]string {
		out := map[string]string{"project": project, "environment": stack}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	assert.Equal(t, 2.0, gaugeOrCounter(t, reg, telemetry.RolloutStepsTotal, labels("step", "weight", "result", "succeeded")))
	assert.Equal(t, 1.0, gaugeOrCounter(t, reg, telemetry.RolloutStepsTotal, labels("step", "analysis", "result", "failed")))
	assert.Equal(t, 2.0, gaugeOrCounter(t, reg, telemetry.AnalysisMeasurementsTotal, labels("metric", "error-rate", "verdict", "Successful")))
	assert.Equal(t, 1.0, gaugeOrCounter(t, reg, telemetry.AnalysisMeasurementsTotal, labels("metric", "error-rate", "verdict", "Error")))
	assert.Equal(t, 0.02, gaugeOrCounter(t, reg, telemetry.AnalysisValue, labels("metric", "error-rate")))
	assert.Equal(t, 0.0, gaugeOrCounter(t, reg, telemetry.CanaryWeight, labels()))
	assert.Equal(t, 1.0, gaugeOrCounter(t, reg, telemetry.OperationsTotal, labels("operation", "rollout", "result", "failed")), "an aborted rollout is a failed change")

	// The run record.
	recs := runsOf(t, ctx, e, project, stack)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, "rollout", last.Operation)
	assert.Equal(t, runs.Failed, last.Result)
	assert.Contains(t, last.Error, "rollout aborted: step 3: analysis error-rate failed")
	require.NotNil(t, last.Rollout)
	assert.Equal(t, rollout.Aborted, last.Rollout.Phase)
	require.Len(t, last.Rollout.Checks, 2)
	res, ok := last.Rollout.Checks[0].Analysis()
	require.True(t, ok, "%T", last.Rollout.Checks[0].Detail)
	require.Len(t, res.Measurements, 2)
	require.NotNil(t, res.Measurements[1].Value)
	assert.Equal(t, 0.02, *res.Measurements[1].Value)
	res, ok = last.Rollout.Checks[1].Analysis()
	require.True(t, ok)
	require.Len(t, res.Measurements, 1)
	assert.Equal(t, "metrics endpoint refused key [secret]", res.Measurements[0].Error)
	b, err := json.Marshal(last)
	require.NoError(t, err)
	assert.NotContains(t, string(b), apiKey)
}

// TestDeploy_GateTriggeredRollbackIsObserved: a deploy whose gate (an
// analysis) fails is rolled back; the notifications carry the cause and
// the measurements, the run record keeps the gate's check, masked.
func TestDeploy_GateTriggeredRollbackIsObserved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const project, stack, apiKey = "rollouttest", "gate-obs", "api-key-1b2c3d4e5f"
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec)
	lookup := func(v string) (automation.Program, error) {
		return withSecret(exporting(project, stack, v), apiKey), nil
	}
	v1, _ := lookup("v1")
	_, err := e.Deploy(ctx, automation.Release{Version: "v1", Program: v1}, lookup)
	require.NoError(t, err)
	rec.take()

	v2, _ := lookup("v2")
	_, err = e.Deploy(ctx, automation.Release{Version: "v2", Program: v2,
		Gates: []rollout.Gate{errorRate(t, errors.New("unused"), 0.3, 0.4)}}, lookup)
	var re *automation.ReleaseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "v1", re.Restored)
	evs := rec.take()
	require.Equal(t, []chatops.Kind{chatops.RunFailed, chatops.RollbackDone}, kinds(evs))
	for _, ev := range evs {
		details := strings.Join(ev.Details, "\n")
		assert.Contains(t, details, "analysis error-rate: Failed", ev.Kind)
		assert.Contains(t, details, "error-rate: Failed (1 measurements: 0.3 Failed)", ev.Kind)
	}
	recs := runsOf(t, ctx, e, project, stack)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, "deploy", last.Operation)
	require.Len(t, last.Checks, 1)
	assert.Equal(t, rollout.Failed, last.Checks[0].Verdict)
	res, ok := last.Checks[0].Analysis()
	require.True(t, ok)
	require.Len(t, res.Measurements, 1)
	assert.Equal(t, 0.3, *res.Measurements[0].Value)
}

// TestAbortRollout_NotifiesTheAbortAndTheRollback: a rollout paused until
// promoted notifies its step and the pause; aborting it by hand notifies
// the abort with its cause, then the rollback, and its run record is a
// failed rollout.
func TestAbortRollout_NotifiesTheAbortAndTheRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const project, stack = "rollouttest", "rollout-abort"
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec)
	lookup := func(v string) (automation.Program, error) { return exporting(project, stack, v), nil }
	v1, _ := lookup("v1")
	_, err := e.Deploy(ctx, automation.Release{Version: "v1", Program: v1}, lookup)
	require.NoError(t, err)
	rec.take()

	v2, _ := lookup("v2")
	c := automation.Canary{
		Release: automation.Release{Version: "v2", Program: v2},
		At:      func(w int) (automation.Program, error) { return lookup(fmt.Sprintf("v2-at-%d", w)) },
		Steps:   []rollout.Step{{Weight: 20}, {UntilPromoted: true}, {Weight: 100}},
	}
	st, err := e.Rollout(ctx, c, lookup)
	require.NoError(t, err)
	require.Equal(t, rollout.Paused, st.Phase)
	evs := rec.take()
	require.Equal(t, []chatops.Kind{chatops.RolloutStep, chatops.RolloutStep, chatops.RunSucceeded}, kinds(evs))
	assert.Contains(t, evs[1].Summary, "paused at step 1 (pause until promoted) of 3")

	st, err = e.AbortRollout(ctx, c, lookup, "the new checkout page confuses people")
	require.NoError(t, err)
	require.Equal(t, rollout.Aborted, st.Phase)
	evs = rec.take()
	require.Equal(t, []chatops.Kind{chatops.RolloutAborted, chatops.RollbackDone}, kinds(evs))
	assert.Contains(t, evs[0].Details, "cause: the new checkout page confuses people")
	assert.Contains(t, strings.Join(evs[1].Details, "\n"), "rollout aborted: the new checkout page confuses people")
	recs := runsOf(t, ctx, e, project, stack)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, "rollout", last.Operation)
	assert.Equal(t, runs.Failed, last.Result)
	require.NotNil(t, last.Rollout)
	assert.Equal(t, rollout.Aborted, last.Rollout.Phase)
}

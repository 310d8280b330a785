package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/analysis"
)

// fakeClock fires every wait at once and advances its time by the wait,
// recording each.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// values is a Func provider that returns its values in turn (a value of
// NaN returns ErrNoData, an error value returns that error).
func values(vs ...any) (analysis.Func, *int) {
	calls := new(int)
	return func(context.Context) (float64, error) {
		v := vs[min(*calls, len(vs)-1)]
		*calls++
		switch v := v.(type) {
		case float64:
			return v, nil
		case error:
			return 0, v
		}
		panic(fmt.Sprintf("values: %T", v))
	}, calls
}

func cond(t *testing.T, s string) analysis.Condition {
	t.Helper()
	c, err := analysis.ParseCondition(s)
	require.NoError(t, err)
	return c
}

func metric(t *testing.T, p analysis.Provider) analysis.Metric {
	return analysis.Metric{
		Name: "error-rate", Provider: p, Interval: 30 * time.Second, Count: 5,
		SuccessCondition: cond(t, "result < 0.05"), FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 2,
	}
}

func TestRun_HealthyValuesSucceedAfterCountMeasurementsOneIntervalApart(t *testing.T) {
	p, calls := values(0.01, 0.02, 0.2, 0.01, 0.03) // one failure, within FailureLimit 1
	clock := newFakeClock()
	start := clock.Now()
	r, err := analysis.Run(context.Background(), metric(t, p), analysis.WithClock(clock))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseSuccessful, r.Phase, r.Message)
	assert.Equal(t, 5, *calls)
	require.Len(t, r.Measurements, 5)
	assert.Equal(t, []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}, clock.waits,
		"the first measurement is taken at once, then one every Interval")
	for i, ms := range r.Measurements {
		assert.Equal(t, start.Add(time.Duration(i)*30*time.Second), ms.Time, "measurement %d", i)
	}
	assert.Equal(t, analysis.PhaseFailed, r.Measurements[2].Phase)
	assert.Equal(t, 0.2, *r.Measurements[2].Value)
	assert.Equal(t, [4]int{4, 1, 0, 0}, [4]int{r.Successful, r.Failed, r.Inconclusive, r.Errors})
	assert.Equal(t, "error-rate", r.Metric)
	assert.Equal(t, "func", r.Provider)
	assert.Equal(t, "result < 0.05", r.Condition)
	assert.Equal(t, start, r.StartedAt)
	assert.Equal(t, start.Add(120*time.Second), r.FinishedAt)
}

func TestRun_FailuresBeyondTheLimitStopEarly(t *testing.T) {
	p, calls := values(0.01, 0.2, 0.3, 0.01, 0.01)
	r, err := analysis.Run(context.Background(), metric(t, p), analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseFailed, r.Phase)
	assert.Equal(t, 3, *calls, "the second failure exceeds FailureLimit 1: no more measurements")
	require.Len(t, r.Measurements, 3)
	assert.Equal(t, 2, r.Failed)
	assert.Contains(t, r.Message, "2 of 3 measurements failed (FailureLimit 1)")
	assert.Contains(t, r.Message, "0.3 does not satisfy result < 0.05")
}

func TestRun_InconclusivesBeyondTheLimitEndInconclusive(t *testing.T) {
	noData := fmt.Errorf("query returned no series: %w", analysis.ErrNoData)
	p, calls := values(0.01, noData, math.NaN(), 0.01)
	r, err := analysis.Run(context.Background(), metric(t, p), analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseInconclusive, r.Phase)
	assert.Equal(t, 3, *calls)
	require.Len(t, r.Measurements, 3)
	assert.Equal(t, analysis.PhaseInconclusive, r.Measurements[1].Phase)
	assert.Nil(t, r.Measurements[1].Value)
	assert.Contains(t, r.Measurements[1].Error, "no series")
	assert.Equal(t, analysis.PhaseInconclusive, r.Measurements[2].Phase, "NaN is no value, not a success")
	assert.Contains(t, r.Measurements[2].Error, "NaN")
	assert.Contains(t, r.Message, "InconclusiveLimit 1")
}

func TestRun_NoSuccessfulMeasurementIsNeverASuccess(t *testing.T) {
	noData := fmt.Errorf("nothing: %w", analysis.ErrNoData)
	p, _ := values(noData, 0.5)
	m := metric(t, p)
	m.Count = 2
	r, err := analysis.Run(context.Background(), m, analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseInconclusive, r.Phase, "one inconclusive and one failure are within the limits, but nothing succeeded")
	assert.Contains(t, r.Message, "none of 2 measurements succeeded")
}

func TestRun_ConsecutiveErrorsBeyondTheLimitEndInError(t *testing.T) {
	boom := errors.New("connection refused")
	p, calls := values(0.01, boom, boom, 0.01, boom, boom, boom, 0.01)
	r, err := analysis.Run(context.Background(), metric(t, p), analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseError, r.Phase)
	assert.Equal(t, 7, *calls, "two errors in a row are tolerated, the third in a row ends the run")
	assert.Equal(t, 5, r.Errors)
	assert.Equal(t, 2, r.Successful)
	assert.Equal(t, "connection refused", r.Measurements[6].Error)
	assert.Contains(t, r.Message, "provider errors in a row: 3 (ConsecutiveErrorLimit 2)")
}

func TestRun_ErrorsDoNotCountTowardCount(t *testing.T) {
	boom := errors.New("timeout")
	p, calls := values(boom, 0.01, boom, 0.01, 0.01, 0.01, 0.01)
	r, err := analysis.Run(context.Background(), metric(t, p), analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseSuccessful, r.Phase)
	assert.Equal(t, 7, *calls)
	assert.Len(t, r.Measurements, 7, "errors are kept")
	assert.Equal(t, 5, r.Successful)
}

// blockingClock's waits never fire; it says when one starts.
type blockingClock struct{ waiting chan struct{} }

func (c blockingClock) Now() time.Time { return time.Time{} }
func (c blockingClock) After(time.Duration) <-chan time.Time {
	c.waiting <- struct{}{}
	return nil
}

func TestRun_CancellingTheContextEndsTheRunAtOnce(t *testing.T) {
	p, calls := values(0.01)
	ctx, cancel := context.WithCancel(context.Background())
	clock := blockingClock{waiting: make(chan struct{})}
	done := make(chan struct{})
	var r analysis.Result
	var err error
	go func() {
		defer close(done)
		r, err = analysis.Run(ctx, metric(t, p), analysis.WithClock(clock))
	}()
	<-clock.waiting // the run waits for its second measurement
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, *calls)
	assert.Equal(t, analysis.PhaseInconclusive, r.Phase, "a cancelled run never promotes")
	assert.Len(t, r.Measurements, 1, "what was measured is kept")
	assert.Contains(t, r.Message, "cancelled after 1 of 5 measurements")
}

func TestRun_AProviderFailingBecauseOfCancellationIsNoMeasurement(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := analysis.Func(func(ctx context.Context) (float64, error) {
		cancel()
		return 0, ctx.Err()
	})
	r, err := analysis.Run(ctx, metric(t, p), analysis.WithClock(newFakeClock()))
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, r.Measurements)
	assert.Equal(t, analysis.PhaseInconclusive, r.Phase)
}

func TestMetric_ValidateNamesTheFieldAndTheFix(t *testing.T) {
	p, _ := values(0.01)
	for _, tc := range []struct {
		name   string
		edit   func(*analysis.Metric)
		expect []string
	}{
		{"no name", func(m *analysis.Metric) { m.Name = "" }, []string{"Metric.Name is empty", `"error-rate"`}},
		{"no provider", func(m *analysis.Metric) { m.Provider = nil }, []string{"Metric.Provider is nil"}},
		{"nil func", func(m *analysis.Metric) { m.Provider = analysis.Func(nil) }, []string{"Metric.Provider", "Func provider is nil"}},
		{"no condition", func(m *analysis.Metric) { m.SuccessCondition = analysis.Condition{} }, []string{"Metric.SuccessCondition is unset", `"result < 0.05"`}},
		{"nil condition func", func(m *analysis.Metric) { m.SuccessCondition = analysis.ConditionFunc("x", nil) }, []string{"Metric.SuccessCondition is unset"}},
		{"no count", func(m *analysis.Metric) { m.Count = 0 }, []string{"Metric.Count is 0", "at least 1"}},
		{"no interval", func(m *analysis.Metric) { m.Interval = 0 }, []string{"Metric.Interval is 0 with Count 5", "30 * time.Second"}},
		{"negative interval", func(m *analysis.Metric) { m.Interval = -time.Second }, []string{"Metric.Interval is -1s"}},
		{"failure limit tolerates all", func(m *analysis.Metric) { m.FailureLimit = 5 }, []string{"Metric.FailureLimit is 5 with Count 5", "from 0 to 4"}},
		{"negative failure limit", func(m *analysis.Metric) { m.FailureLimit = -1 }, []string{"Metric.FailureLimit is -1"}},
		{"inconclusive limit", func(m *analysis.Metric) { m.InconclusiveLimit = 9 }, []string{"Metric.InconclusiveLimit is 9 with Count 5"}},
		{"error limit", func(m *analysis.Metric) { m.ConsecutiveErrorLimit = -2 }, []string{"Metric.ConsecutiveErrorLimit is -2"}},
		{"prometheus address", func(m *analysis.Metric) { m.Provider = analysis.Prometheus{Address: "127.0.0.1:9090", Query: "up"} },
			[]string{"Prometheus.Address \"127.0.0.1:9090\" is not an absolute http or https URL", "http://127.0.0.1:9090"}},
		{"prometheus query", func(m *analysis.Metric) { m.Provider = analysis.Prometheus{Address: "http://p:9090"} }, []string{"Prometheus.Query is empty"}},
		{"http url", func(m *analysis.Metric) { m.Provider = analysis.HTTP{} }, []string{"HTTP.URL is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metric(t, p)
			require.NoError(t, m.Validate(), "the metric is valid before the edit")
			tc.edit(&m)
			err := m.Validate()
			require.Error(t, err)
			for _, want := range tc.expect {
				assert.Contains(t, err.Error(), want)
			}
			_, runErr := analysis.Run(context.Background(), m, analysis.WithClock(newFakeClock()))
			assert.Equal(t, err, runErr, "Run validates before it measures")
		})
	}
}

func TestMetric_ValidateAcceptsOneMeasurementWithoutInterval(t *testing.T) {
	p, _ := values(0.01)
	m := metric(t, p)
	m.Count, m.Interval, m.FailureLimit, m.InconclusiveLimit = 1, 0, 0, 0
	assert.NoError(t, m.Validate())
}

func TestParseCondition_EveryOperator(t *testing.T) {
	for _, tc := range []struct {
		text     string
		met, not []float64
	}{
		{"result < 0.05", []float64{0.04, -1}, []float64{0.05, 1}},
		{"result <= 0.05", []float64{0.05, 0}, []float64{0.0501}},
		{"result > 99.5", []float64{99.6}, []float64{99.5, 0}},
		{"result >= 99.5", []float64{99.5, 100}, []float64{99.4}},
		{"result == 200", []float64{200}, []float64{201, 0}},
		{"result != 0", []float64{1, -1}, []float64{0}},
		{"result<1e-3", []float64{0.0001}, []float64{0.001}},
		{"  result   >=   -2  ", []float64{-2}, []float64{-3}},
	} {
		c, err := analysis.ParseCondition(tc.text)
		require.NoError(t, err, tc.text)
		for _, v := range tc.met {
			assert.True(t, c.Met(v), "%q should be met by %v", tc.text, v)
		}
		for _, v := range tc.not {
			assert.False(t, c.Met(v), "%q should not be met by %v", tc.text, v)
		}
	}
	c, err := analysis.ParseCondition("result<1e-3")
	require.NoError(t, err)
	assert.Equal(t, "result < 1e-3", c.String())
}

func TestParseCondition_ErrorsShowAValidExample(t *testing.T) {
	for text, want := range map[string]string{
		"":                     "not of the form result <op> NUMBER",
		"value < 1":            `must start with "result"`,
		"result <> 1":          `the operator "<>"`,
		"result = 1":           `the operator "="`,
		"result < x":           `"x", which is not a finite number`,
		"result < NaN":         `"NaN", which is not a finite number`,
		"result < 1 and more":  "not of the form",
		"result < 0.05 < 0.06": "not of the form",
	} {
		_, err := analysis.ParseCondition(text)
		require.Error(t, err, "%q", text)
		assert.Contains(t, err.Error(), want, "%q", text)
		assert.Contains(t, err.Error(), `"result < 0.05"`, "%q: the error shows a valid condition", text)
	}
}

func TestCondition_RoundTripsThroughJSON(t *testing.T) {
	var spec struct {
		Success analysis.Condition `json:"success"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"success":"result <= 0.01"}`), &spec))
	assert.True(t, spec.Success.Met(0.01))
	assert.False(t, spec.Success.Met(0.02))
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	assert.JSONEq(t, `{"success":"result <= 0.01"}`, string(b))
	err = json.Unmarshal([]byte(`{"success":"result ~ 1"}`), &spec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `the operator "~"`)
}

func TestConditionFunc_JudgesWithTheFunction(t *testing.T) {
	p, _ := values(3.0)
	m := metric(t, p)
	m.Count, m.FailureLimit, m.InconclusiveLimit = 1, 0, 0
	m.SuccessCondition = analysis.ConditionFunc("result is odd", func(v float64) bool { return int(v)%2 == 1 })
	r, err := analysis.Run(context.Background(), m, analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseSuccessful, r.Phase)
	assert.Equal(t, "result is odd", r.Condition)
}

func TestResult_EncodesAsJSONWithEveryMeasurement(t *testing.T) {
	p, _ := values(0.01, fmt.Errorf("empty: %w", analysis.ErrNoData), errors.New("boom"), 0.02, 0.03, 0.04)
	r, err := analysis.Run(context.Background(), metric(t, p), analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var back analysis.Result
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r, back)
	assert.Len(t, back.Measurements, 6)
	assert.Contains(t, string(b), `"phase":"Inconclusive","error":"empty: no data"`)
	assert.Contains(t, string(b), `"phase":"Error","error":"boom"`)
	assert.Contains(t, string(b), `"value":0.01,"phase":"Successful"`)
}

func TestRunAll_AFailingMetricStopsTheOthers(t *testing.T) {
	healthy, _ := values(0.01)
	bad, _ := values(0.9)
	slow := metric(t, healthy)
	slow.Name, slow.Count, slow.FailureLimit, slow.InconclusiveLimit = "latency", 1000, 0, 0
	failing := metric(t, bad)
	failing.FailureLimit = 0
	clock := blockingClock{waiting: make(chan struct{}, 2000)} // waits never fire: only the stop ends "latency"
	a, err := analysis.RunAll(context.Background(), []analysis.Metric{slow, failing}, analysis.WithClock(clock))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseFailed, a.Phase)
	require.Len(t, a.Metrics, 2)
	assert.Equal(t, "latency", a.Metrics[0].Metric)
	assert.Equal(t, analysis.PhaseInconclusive, a.Metrics[0].Phase)
	assert.Contains(t, a.Metrics[0].Message, `metric "error-rate" ended Failed`)
	assert.Equal(t, analysis.PhaseFailed, a.Metrics[1].Phase)
}

func TestRunAll_AllHealthyIsSuccessful(t *testing.T) {
	p1, _ := values(0.01)
	p2, _ := values(0.02)
	m2 := metric(t, p2)
	m2.Name = "latency"
	a, err := analysis.RunAll(context.Background(), []analysis.Metric{metric(t, p1), m2}, analysis.WithClock(newFakeClock()))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseSuccessful, a.Phase)
	assert.Equal(t, analysis.PhaseSuccessful, a.Metrics[0].Phase)
	assert.Equal(t, analysis.PhaseSuccessful, a.Metrics[1].Phase)
}

func TestRunAll_RefusesDuplicateNamesAndNoMetrics(t *testing.T) {
	p, _ := values(0.01)
	_, err := analysis.RunAll(context.Background(), []analysis.Metric{metric(t, p), metric(t, p)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `two metrics are named "error-rate"`)
	_, err = analysis.RunAll(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at least one Metric")
}

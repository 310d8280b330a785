package analysis_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/integration/promtest"
)

// TestPrometheus_RealServer runs the analysis against a real Prometheus
// scraping a Pushgateway, with the real clock and a short interval.
func TestPrometheus_RealServer(t *testing.T) {
	prom := promtest.Start(t)
	prom.Push(t, "healthy", "canary_error_rate", 0.01)
	prom.Push(t, "bad", "canary_error_rate", 0.2)
	prom.WaitFor(t, `canary_error_rate{job="healthy"}`, 0.01)
	prom.WaitFor(t, `canary_error_rate{job="bad"}`, 0.2)

	errorRate := func(t *testing.T, query string) analysis.Metric {
		return analysis.Metric{
			Name:             "error-rate",
			Provider:         analysis.Prometheus{Address: prom.URL, Query: query},
			Interval:         20 * time.Millisecond,
			Count:            3,
			SuccessCondition: cond(t, "result < 0.05"),
			FailureLimit:     1,
		}
	}

	t.Run("a healthy rate succeeds after Count measurements", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `canary_error_rate{job="healthy"}`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseSuccessful, r.Phase, r.Message)
		require.Len(t, r.Measurements, 3)
		for _, ms := range r.Measurements {
			require.NotNil(t, ms.Value)
			assert.Equal(t, 0.01, *ms.Value)
		}
		assert.Equal(t, `prometheus "canary_error_rate{job=\"healthy\"}" at `+prom.URL, r.Provider)
	})

	t.Run("a bad rate fails once the failure limit is exceeded", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `canary_error_rate{job="bad"}`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseFailed, r.Phase)
		require.Len(t, r.Measurements, 2, "FailureLimit 1: the second failure ends the run")
		assert.Equal(t, 0.2, *r.Measurements[1].Value)
	})

	t.Run("no series is inconclusive", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `canary_error_rate{job="absent"}`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseInconclusive, r.Phase)
		require.Len(t, r.Measurements, 1, "InconclusiveLimit 0")
		assert.Contains(t, r.Measurements[0].Error, "returned no series")
		assert.Nil(t, r.Measurements[0].Value)
	})

	t.Run("0/0 is inconclusive", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `canary_error_rate{job="healthy"} * 0 / 0`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseInconclusive, r.Phase)
		assert.Contains(t, r.Measurements[0].Error, "NaN")
	})

	t.Run("a scalar gives its value", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `scalar(canary_error_rate{job="healthy"})`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseSuccessful, r.Phase, r.Message)
		assert.Equal(t, 0.01, *r.Measurements[0].Value)
	})

	t.Run("several series are an error naming the query", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `canary_error_rate`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseError, r.Phase)
		require.Len(t, r.Measurements, 1)
		assert.Contains(t, r.Measurements[0].Error, `prometheus query "canary_error_rate" returned 2 series`)
		assert.Contains(t, r.Measurements[0].Error, "aggregate it")
	})

	t.Run("a bad query is an error", func(t *testing.T) {
		r, err := analysis.Run(context.Background(), errorRate(t, `sum(`))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseError, r.Phase)
		assert.Contains(t, r.Measurements[0].Error, `prometheus query "sum("`)
	})

	t.Run("credentials in the address never reach the result", func(t *testing.T) {
		host := prom.URL[len("http://"):]
		for address, phase := range map[string]analysis.Phase{
			"http://reader:hunter2@" + host + "/?token=s3cret":        analysis.PhaseSuccessful, // used…
			"http://reader:hunter2@127.0.0.1:1/?token=s3cret":         analysis.PhaseError,      // …and not shown in an error
			"http://reader:hunter2@" + host + "/nowhere?token=s3cret": analysis.PhaseError,
		} {
			m := errorRate(t, `canary_error_rate{job="healthy"}`)
			m.Provider = analysis.Prometheus{Address: address, Query: `canary_error_rate{job="healthy"}`}
			r, err := analysis.Run(context.Background(), m)
			require.NoError(t, err)
			assert.Equal(t, phase, r.Phase, "%s: %s", address, r.Message)
			b, err := json.Marshal(r)
			require.NoError(t, err)
			for _, secret := range []string{"hunter2", "s3cret", "reader"} {
				assert.NotContains(t, string(b), secret)
			}
		}
	})
}

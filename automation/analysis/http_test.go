package analysis_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/analysis"
)

func httpMetric(t *testing.T, p analysis.HTTP, condition string) analysis.Metric {
	return analysis.Metric{Name: "health", Provider: p, Count: 1, SuccessCondition: cond(t, condition)}
}

func TestHTTP_TheStatusCodeIsTheValue(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodGet, r.Method)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	m := httpMetric(t, analysis.HTTP{URL: srv.URL + "/healthz"}, "result == 200")

	r, err := analysis.Run(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseSuccessful, r.Phase, r.Message)
	assert.Equal(t, 200.0, *r.Measurements[0].Value)
	assert.Equal(t, "GET "+srv.URL+"/healthz", r.Provider)

	status = http.StatusServiceUnavailable
	r, err = analysis.Run(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseFailed, r.Phase)
	assert.Equal(t, 503.0, *r.Measurements[0].Value)
}

func TestHTTP_TheValueFromAJSONField(t *testing.T) {
	body := `{"data":{"errorRate":0.01,"items":[{"v":"7"}],"ok":true,"none":null}}`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	for field, want := range map[string]float64{"data.errorRate": 0.01, "data.items.0.v": 7, "data.ok": 1} {
		r, err := analysis.Run(context.Background(), httpMetric(t, analysis.HTTP{URL: srv.URL, JSONField: field}, "result >= 0"))
		require.NoError(t, err)
		assert.Equal(t, analysis.PhaseSuccessful, r.Phase, "%s: %s", field, r.Message)
		assert.Equal(t, want, *r.Measurements[0].Value, field)
	}
	for field, want := range map[string]analysis.Phase{
		"data.none":      analysis.PhaseInconclusive, // null
		"data.missing":   analysis.PhaseInconclusive,
		"data":           analysis.PhaseError, // an object, not a number
		"data.items.5.v": analysis.PhaseError,
	} {
		r, err := analysis.Run(context.Background(), httpMetric(t, analysis.HTTP{URL: srv.URL, JSONField: field}, "result >= 0"))
		require.NoError(t, err)
		assert.Equal(t, want, r.Phase, "%s: %s", field, r.Message)
		assert.Contains(t, r.Measurements[0].Error, field)
	}

	status = http.StatusInternalServerError
	r, err := analysis.Run(context.Background(), httpMetric(t, analysis.HTTP{URL: srv.URL, JSONField: "data.errorRate"}, "result >= 0"))
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseError, r.Phase)
	assert.Contains(t, r.Measurements[0].Error, "500 Internal Server Error, not 2xx")
}

func TestHTTP_CredentialsInTheURLNeverReachTheResult(t *testing.T) {
	var gotToken, gotUser string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotToken = r.URL.Query().Get("token")
		gotUser, _, _ = r.BasicAuth()
	}))
	secretURL := strings.Replace(srv.URL, "http://", "http://reader:hunter2@", 1) + "/healthz?token=s3cret"
	m := httpMetric(t, analysis.HTTP{URL: secretURL}, "result == 200")

	r, err := analysis.Run(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseSuccessful, r.Phase)
	assert.Equal(t, "s3cret", gotToken, "the credentials are used")
	assert.Equal(t, "reader", gotUser)

	srv.Close() // now the request fails, and the error names the URL
	r, err = analysis.Run(context.Background(), m)
	require.NoError(t, err)
	assert.Equal(t, analysis.PhaseError, r.Phase)
	assert.Contains(t, r.Measurements[0].Error, strings.TrimPrefix(srv.URL, "http://")+"/healthz")
	b, err := json.Marshal(r)
	require.NoError(t, err)
	for _, secret := range []string{"hunter2", "s3cret", "reader"} {
		assert.NotContains(t, string(b), secret)
	}
}

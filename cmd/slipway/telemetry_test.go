package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/telemetry"
	"github.com/slipwayhq/slipway/automation/telemetry/telemetrytest"
)

// TestCLI_TelemetryOfAnUp runs one up with tracing (OTLP/HTTP to a
// loopback receiver, under a CI job's TRACEPARENT), --metrics-file,
// --pushgateway and --log-format json, with a secret planted: the spans
// arrive under the CI trace, the metrics file and the push parse with the
// Prometheus text parser and carry the operation's series, every log
// record is JSON with the trace and span IDs, and the secret is nowhere.
func TestCLI_TelemetryOfAnUp(t *testing.T) {
	t.Parallel()
	const canary = "canary-7f31c0e5aa"
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	dir := t.TempDir()
	destroyAfter(t, dir, "tl-dev")
	rcv := telemetrytest.NewReceiver()
	defer rcv.Close()
	var mu sync.Mutex
	var pushed []byte
	var pushPath, pushMethod string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushed, pushPath, pushMethod = b, r.URL.Path, r.Method
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	metricsFile := filepath.Join(t.TempDir(), "slipway.prom")

	r := exe(t, dir, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL(), "OTEL_SERVICE_NAME=ci-pipeline",
		"TRACEPARENT=00-" + traceID + "-" + parentID + "-01"},
		"--log-format", "json", "-v", "--metrics-file", metricsFile, "--pushgateway", gw.URL,
		"up", "--env", "tl-dev", "--kubeconfig", cluster.Kubeconfig, "--secret", "API_TOKEN="+canary, "--set", "GREETING=hi")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, canary)

	// Spans: flushed before the binary exited.
	spans := rcv.Wait("slipway.up", 10*time.Second)
	var cli, op *telemetrytest.Span
	for i, s := range spans {
		assert.Equal(t, traceID, s.TraceID, "%s is in the CI trace", s.Name)
		assert.Equal(t, "ci-pipeline", s.Resource["service.name"])
		for _, v := range s.Attrs {
			assert.NotContains(t, v, canary)
		}
		switch s.Name {
		case "slipway up":
			cli = &spans[i]
		case "slipway.up":
			op = &spans[i]
		}
	}
	require.NotNil(t, cli, "the command's span: %v", spanNames(spans))
	require.NotNil(t, op, "the operation's span: %v", spanNames(spans))
	assert.Equal(t, parentID, cli.ParentID, "the command continues the CI job's span")
	assert.Equal(t, cli.SpanID, op.ParentID)
	assert.Equal(t, "tl-dev", op.Attrs["slipway.environment"])
	assert.Equal(t, "succeeded", op.Attrs["slipway.result"])
	resources := 0
	for _, s := range spans {
		if s.Name == telemetry.SpanResource {
			resources++
		}
	}
	assert.Positive(t, resources)

	// Logs: JSON records with the trace and span IDs of their operation.
	withIDs := 0
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "a log line is not JSON: %s", l)
		if rec["msg"] == "up" {
			assert.Equal(t, traceID, rec["trace_id"], l)
			assert.Len(t, rec["span_id"], 16, l)
			withIDs++
		}
	}
	assert.Equal(t, 1, withIDs, "the engine's up record, stderr:\n%s", r.stderr)

	// Metrics: the file and the push parse and carry the up.
	parse := func(what string, b []byte) {
		t.Helper()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
		require.NoError(t, err, "the Prometheus text parser reads %s:\n%s", what, b)
		f, ok := fams[telemetry.OperationsTotal]
		require.True(t, ok, "%s has %s:\n%s", what, telemetry.OperationsTotal, b)
		require.Len(t, f.Metric, 1, what)
		labels := map[string]string{}
		for _, lp := range f.Metric[0].Label {
			labels[lp.GetName()] = lp.GetValue()
		}
		assert.Equal(t, map[string]string{"project": "slipway", "environment": "tl-dev", "operation": "up", "result": "succeeded"}, labels, what)
		assert.Equal(t, 1.0, f.Metric[0].GetCounter().GetValue(), what)
		assert.Contains(t, fams, telemetry.ResourceStepDuration, what)
		assert.Contains(t, fams, telemetry.ResourcesGauge, what)
	}
	b, err := os.ReadFile(metricsFile)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "# EOF", "a *.prom file gets the Prometheus text format (node-exporter's textfile collector)")
	parse("--metrics-file", b)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, http.MethodPut, pushMethod)
	assert.Equal(t, "/metrics/job/slipway/instance/tl-dev", pushPath)
	parse("--pushgateway", pushed)
}

func spanNames(spans []telemetrytest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestCLI_TelemetryFlagsRefusedAsBadInput: a bad --log-format,
// --pushgateway or OTEL_TRACES_EXPORTER is refused before anything runs,
// naming the flag or variable.
func TestCLI_TelemetryFlagsRefusedAsBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--log-format", "xml", "params"}, `--log-format "xml"`},
		{nil, []string{"--pushgateway", "ftp://gw:9091", "params"}, "--pushgateway"},
		{nil, []string{"--pushgateway", "gw:9091", "params"}, "http(s) URL"},
		{[]string{"OTEL_TRACES_EXPORTER=zipkin"}, []string{"params"}, "OTEL_TRACES_EXPORTER"},
	} {
		r := exe(t, dir, c.env, c.args...)
		assert.Equal(t, ExitError, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
	}
}

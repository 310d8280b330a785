package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/telemetry"
	"github.com/slipwayhq/slipway/automation/telemetry/telemetrytest"
	"github.com/slipwayhq/slipway/policypacks"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSetup_OffUnlessAsked(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"nothing set":         {},
		"exporter none":       {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		"sdk disabled":        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
		"only a service name": {"OTEL_SERVICE_NAME": "ci"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.False(t, telemetry.Enabled(env(vars)))
			tp, shutdown, err := telemetry.Setup(context.Background(), env(vars), io.Discard)
			require.NoError(t, err)
			_, sp := tp.Tracer("x").Start(context.Background(), "s")
			assert.False(t, sp.IsRecording(), "a no-op provider records nothing")
			assert.NoError(t, shutdown(context.Background()))
		})
	}
}

func TestSetup_RefusesUnknownExporterAndProtocol(t *testing.T) {
	_, _, err := telemetry.Setup(context.Background(), env(map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}), io.Discard)
	var ce *telemetry.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "OTEL_TRACES_EXPORTER", ce.Var)
	assert.Contains(t, err.Error(), "otlp, console or none")

	_, _, err = telemetry.Setup(context.Background(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}), io.Discard)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "OTEL_EXPORTER_OTLP_PROTOCOL", ce.Var)
	assert.Equal(t, "http/json", ce.Value)
}

func TestSetup_ConsoleWritesSpansToStderr(t *testing.T) {
	var buf bytes.Buffer
	tp, shutdown, err := telemetry.Setup(context.Background(), env(map[string]string{"OTEL_TRACES_EXPORTER": "console"}), &buf)
	require.NoError(t, err)
	_, sp := tp.Tracer("x").Start(context.Background(), "console-span")
	sp.End()
	require.NoError(t, shutdown(context.Background()))
	assert.Contains(t, buf.String(), `"Name":"console-span"`)
}

// The OTLP/HTTP exporter sends to the endpoint of the environment, with
// the service name and resource attributes it gives, under a TRACEPARENT.
func TestSetup_OTLPHTTPFromEnvContinuesTraceparent(t *testing.T) {
	rcv := telemetrytest.NewReceiver()
	defer rcv.Close()
	vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL(), "OTEL_SERVICE_NAME": "ci-deploy",
		"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=platform",
		"TRACEPARENT":              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	for k, v := range vars {
		t.Setenv(k, v) // the exporter reads the endpoint from the process environment
	}
	tp, shutdown, err := telemetry.Setup(context.Background(), os.Getenv, io.Discard)
	require.NoError(t, err)
	ctx := telemetry.ContinueTrace(context.Background(), os.Getenv)
	_, sp := telemetry.Tracer(tp).Start(ctx, "slipway.up")
	sp.End()
	require.NoError(t, shutdown(context.Background()))
	spans := rcv.Wait("slipway.up", 10*time.Second)
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.TraceID)
	assert.Equal(t, "00f067aa0ba902b7", s.ParentID)
	assert.Equal(t, "ci-deploy", s.Resource["service.name"], "OTEL_SERVICE_NAME wins over the default")
	assert.Equal(t, "platform", s.Resource["team"])
	assert.Equal(t, telemetry.TracerName, s.Scope)
}

func TestSetup_DefaultServiceName(t *testing.T) {
	rcv := telemetrytest.NewReceiver()
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rcv.URL()+"/v1/traces")
	tp, shutdown, err := telemetry.Setup(context.Background(), os.Getenv, io.Discard)
	require.NoError(t, err)
	_, sp := tp.Tracer("x").Start(context.Background(), "s")
	sp.End()
	require.NoError(t, shutdown(context.Background()))
	spans := rcv.Wait("s", 10*time.Second)
	require.Len(t, spans, 1)
	assert.Equal(t, "slipway", spans[0].Resource["service.name"])
	assert.Empty(t, spans[0].ParentID, "no TRACEPARENT: a root span")
}

func TestContinueTrace_MalformedIsIgnored(t *testing.T) {
	ctx := telemetry.ContinueTrace(context.Background(), env(map[string]string{"TRACEPARENT": "00-zz-00-01"}))
	assert.False(t, trace.SpanContextFromContext(ctx).IsValid())
}

func TestLogHandler_AddsTraceAndSpanIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	tp := sdktrace.NewTracerProvider()
	ctx, sp := tp.Tracer("x").Start(context.Background(), "s")
	log.InfoContext(ctx, "with span", "k", "v")
	log.InfoContext(context.Background(), "without span")
	sp.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var with, without map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &with))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &without))
	assert.Equal(t, sp.SpanContext().TraceID().String(), with["trace_id"])
	assert.Equal(t, sp.SpanContext().SpanID().String(), with["span_id"])
	assert.Equal(t, "x", with["component"])
	assert.NotContains(t, without, "trace_id")
	assert.NotContains(t, without, "span_id")
}

func TestResourceSpans_DurationIsTheStepsDuration(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("x").Start(context.Background(), "slipway.stage.apply")
	start := time.Now().Add(-time.Second)
	res := &outcome.Result{Resources: []outcome.ResourceChange{
		{URN: "urn:a", Type: "kubernetes:core/v1:ConfigMap", Op: "create", Started: start, Duration: 1234567 * time.Nanosecond},
		{URN: "urn:b", Type: "kubernetes:core/v1:Namespace", Op: "same"}, // no start seen: no span
	}}
	telemetry.ResourceSpans(ctx, telemetry.Tracer(tp), res)
	parent.End()
	var got []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == telemetry.SpanResource {
			got = append(got, s)
		}
	}
	require.Len(t, got, 1)
	assert.Equal(t, 1234567*time.Nanosecond, got[0].EndTime().Sub(got[0].StartTime()))
	assert.Equal(t, parent.SpanContext().SpanID(), got[0].Parent().SpanID())
	assert.Contains(t, got[0].Attributes(), telemetry.AttrResourceURN.String("urn:a"))
}

// TestEnd_MasksTheRecordedError: the error a span records, and its
// status, carry the masked message; a nil Masker still hides ciphertexts;
// no error is status Ok.
func TestEnd_MasksTheRecordedError(t *testing.T) {
	const cipher = "v1:QUJDREVGR0hJSktM:c2VjcmV0LWNpcGhlcnRleHQ="
	cases := []struct {
		name string
		m    *mask.Masker
		err  error
		want string
	}{
		{"secret value", mask.New("hunter2-x"), errors.New("token hunter2-x refused"), "token [secret] refused"},
		{"nil masks ciphertexts", nil, errors.New("state " + cipher), "state [secret]"},
		{"no error", mask.New("hunter2-x"), nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			_, sp := tp.Tracer("x").Start(context.Background(), "slipway.up")
			telemetry.End(sp, c.err, c.m)
			ended := rec.Ended()
			require.Len(t, ended, 1)
			s := ended[0]
			if c.err == nil {
				assert.Equal(t, codes.Ok, s.Status().Code)
				assert.Empty(t, s.Events())
				return
			}
			assert.Equal(t, codes.Error, s.Status().Code)
			assert.Equal(t, c.want, s.Status().Description)
			require.Len(t, s.Events(), 1)
			var msg string
			for _, a := range s.Events()[0].Attributes {
				if a.Key == "exception.message" {
					msg = a.Value.AsString()
				}
			}
			assert.Equal(t, c.want, msg)
		})
	}
}

func TestMetrics_SeriesAndValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	require.NoError(t, err)
	again, err := telemetry.NewMetrics(reg)
	require.NoError(t, err, "registering twice reuses the series")
	m.Operation("shop", "dev", "up", "succeeded", 3*time.Second)
	again.Operation("shop", "dev", "up", "succeeded", time.Second)
	m.Drift("shop", "dev", 2)
	m.Drift("shop", "dev", 0)
	m.Policy("shop", "prod", &outcome.Result{Policy: []policypacks.Finding{{Pack: "slipway-kubernetes", Policy: "no-privileged", Enforcement: policypacks.Mandatory}}})
	m.Rollback("shop", "prod", "succeeded")
	m.Resources("shop", "dev", 7)
	step := []outcome.ResourceChange{{Type: "t", Op: "create", Started: time.Now(), Duration: time.Second}}
	m.Steps(&outcome.Result{Operation: "up", Resources: step})
	m.Steps(&outcome.Result{Operation: "preview", Resources: step}) // planned, not applied: not counted
	var nilM *telemetry.Metrics
	nilM.Operation("a", "b", "c", "d", time.Second) // a nil Metrics records nothing

	assert.Equal(t, 2.0, testutil.ToFloat64(counter(t, reg, telemetry.OperationsTotal, map[string]string{"project": "shop", "environment": "dev", "operation": "up", "result": "succeeded"})))
	assert.Equal(t, 1.0, testutil.ToFloat64(counter(t, reg, telemetry.DriftDetectedTotal, nil)))
	assert.Equal(t, 0.0, testutil.ToFloat64(counter(t, reg, telemetry.DriftedResources, nil)))
	assert.Equal(t, 7.0, testutil.ToFloat64(counter(t, reg, telemetry.ResourcesGauge, nil)))
	count, err := testutil.GatherAndCount(reg, telemetry.OperationDuration, telemetry.PolicyViolationsTotal, telemetry.RollbacksTotal, telemetry.ResourceStepDuration)
	require.NoError(t, err)
	assert.Equal(t, 4, count)

	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == telemetry.ResourceStepDuration {
			assert.EqualValues(t, 1, f.Metric[0].GetHistogram().GetSampleCount(), "the up's step only")
		}
	}

	// *.prom (node-exporter's textfile collector): the Prometheus text format, types kept.
	path := filepath.Join(t.TempDir(), "slipway.prom")
	require.NoError(t, telemetry.WriteFile(reg, path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "# EOF", "not OpenMetrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err, "the Prometheus text parser reads the file")
	require.Contains(t, parsed, telemetry.OperationDuration)
	assert.EqualValues(t, 2, parsed[telemetry.OperationDuration].Metric[0].GetHistogram().GetSampleCount())
	require.Contains(t, parsed, telemetry.OperationsTotal)
	assert.Equal(t, dto.MetricType_COUNTER, parsed[telemetry.OperationsTotal].GetType(), "counters stay counters")

	// Any other name: OpenMetrics text.
	path = filepath.Join(t.TempDir(), "slipway.om.txt")
	require.NoError(t, telemetry.WriteFile(reg, path))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(b), "# EOF\n"), "OpenMetrics ends with # EOF")
	parser = expfmt.NewTextParser(model.UTF8Validation)
	parsed, err = parser.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err, "the Prometheus text parser reads the OpenMetrics file too")
	require.Contains(t, parsed, telemetry.OperationDuration)
	assert.EqualValues(t, 2, parsed[telemetry.OperationDuration].Metric[0].GetHistogram().GetSampleCount())
}

func TestPush_PutsTheGatheredMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	require.NoError(t, err)
	m.Operation("shop", "dev", "up", "failed", time.Second)
	var method, path string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.Path
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	require.NoError(t, telemetry.Push(context.Background(), srv.URL, reg, map[string]string{"instance": "dev"}))
	assert.Equal(t, http.MethodPut, method)
	assert.Equal(t, "/metrics/job/slipway/instance/dev", path)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "the push is in the text format")
	require.Contains(t, fams, telemetry.OperationsTotal)
	assert.Equal(t, 1.0, fams[telemetry.OperationsTotal].Metric[0].GetCounter().GetValue())
	require.Error(t, telemetry.Push(context.Background(), srv.URL, reg, map[string]string{"environment": "dev"}),
		"a grouping label the series carry is refused")

	err = telemetry.Push(context.Background(), "ftp://gw", reg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http(s) URL")
	srv.Close()
	err = telemetry.Push(context.Background(), srv.URL, reg, nil)
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
}

// counter returns the one collector of name with the given labels, as a
// collector testutil.ToFloat64 reads.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			ok := true
			for _, lp := range m.Label {
				if v, want := labels[lp.GetName()]; want && v != lp.GetValue() {
					ok = false
				}
			}
			if ok {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
			}
		}
	}
	t.Fatalf("no series %s %v", name, labels)
	return nil
}

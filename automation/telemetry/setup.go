package telemetry

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the default service.name of Slipway's spans
// (OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES override it).
const ServiceName = "slipway"

// ConfigError is a telemetry environment variable with a value Slipway
// cannot use.
// Get it with errors.As (a *ConfigError).
type ConfigError struct {
	Var, Value, Want string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("telemetry: %s=%q is not supported; use %s", e.Var, e.Value, e.Want)
}

// Enabled reports whether the environment asks for traces: OTEL_SDK_DISABLED
// is not "true", and OTEL_TRACES_EXPORTER is set to other than "none" or
// an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return true
	}
}

// Setup returns the TracerProvider the standard OTEL_* variables ask for
// (read through getenv), and its shutdown, which flushes the spans.
// Tracing is off (a no-op provider) unless Enabled; then
// OTEL_TRACES_EXPORTER picks the exporter: otlp (the default) or console
// (human-readable JSON on stderr). The OTLP protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
// http/protobuf (default) or grpc; the exporters read their endpoint,
// headers, timeout and TLS settings from the process environment
// themselves. The resource is service.name "slipway" plus
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. Setup sets no global
// state.
func Setup(ctx context.Context, getenv func(string) string, stderr io.Writer) (trace.TracerProvider, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		return noop.NewTracerProvider(), none, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	switch name := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); name {
	case "", "otlp":
		proto := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
		v := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
		if proto == "" {
			proto, v = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL")), "OTEL_EXPORTER_OTLP_PROTOCOL"
		}
		switch proto {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			return nil, none, &ConfigError{Var: v, Value: proto, Want: "http/protobuf (the default) or grpc"}
		}
	case "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stderr))
	default:
		return nil, none, &ConfigError{Var: "OTEL_TRACES_EXPORTER", Value: name, Want: "otlp, console or none"}
	}
	if err != nil {
		return nil, none, fmt.Errorf("telemetry: creating the trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES still yields the rest.
		fmt.Fprintf(stderr, "telemetry: reading the resource attributes: %v\n", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// ContinueTrace returns ctx carrying the remote span context of the
// TRACEPARENT and TRACESTATE variables (W3C Trace Context, as CI systems
// set them), so the spans started under it join the CI job's trace. An
// absent or malformed TRACEPARENT leaves ctx as it is.
func ContinueTrace(ctx context.Context, getenv func(string) string) context.Context {
	c := propagation.MapCarrier{}
	if v := strings.TrimSpace(getenv("TRACEPARENT")); v != "" {
		c["traceparent"] = v
	}
	if v := strings.TrimSpace(getenv("TRACESTATE")); v != "" {
		c["tracestate"] = v
	}
	return propagation.TraceContext{}.Extract(ctx, c)
}

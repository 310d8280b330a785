package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// telemetryFlags are the global telemetry flags and what a run sets up
// from them and the OTEL_* environment.
type telemetryFlags struct {
	logFormat, metricsFile, pushgateway string
	// tp is the run's TracerProvider (a no-op one unless OTEL_* asks for
	// traces), shutdown flushes it.
	tp       trace.TracerProvider
	shutdown func(context.Context) error
	// registry holds metrics, this run's Slipway series (fresh per run).
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	// span is the command's span, the parent of the engine's operations.
	span trace.Span
}

// longRunning are the commands that serve until interrupted: no command
// span (it would last the process's life), and their metrics are served
// on /metrics rather than written at exit.
var longRunning = []string{"operator", "runner", "local", "serve"}

// registerTelemetry adds the global telemetry flags.
func (g *Globals) registerTelemetry(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.tel.logFormat, "log-format", "text", "log records on stderr as text or json (with trace_id and span_id when tracing is on; see -v)")
	pf.StringVar(&g.tel.metricsFile, "metrics-file", "", "write the run's metrics to this file at exit: Prometheus text for a *.prom file (node-exporter's textfile collector), else OpenMetrics text")
	pf.StringVar(&g.tel.pushgateway, "pushgateway", "", "push the run's metrics at exit to this Prometheus Pushgateway URL (job slipway, grouped by instance=<environments>)")
}

// StartTelemetry validates the telemetry flags and sets up logging,
// metrics and tracing (OTEL_* variables, TRACEPARENT) for the command.
func (g *Globals) StartTelemetry(cmd *cobra.Command) error {
	t := &g.tel
	t.tp, t.shutdown = noop.NewTracerProvider(), func(context.Context) error { return nil }
	if t.logFormat != "text" && t.logFormat != "json" {
		return BadInput("--log-format %q is not a log format; use text or json", t.logFormat)
	}
	if t.pushgateway != "" {
		if err := telemetry.CheckPushURL(t.pushgateway); err != nil {
			return BadInput("--pushgateway: %v", strings.TrimPrefix(err.Error(), "telemetry: "))
		}
	}
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(g.logHandler(level)))
	t.registry = prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(t.registry)
	if err != nil {
		return err
	}
	t.metrics = m
	ctx := cmd.Context()
	tp, shutdown, err := telemetry.Setup(ctx, os.Getenv, g.Errw)
	if err != nil {
		return BadInput("tracing: %v", strings.TrimPrefix(err.Error(), "telemetry: "))
	}
	t.tp, t.shutdown = tp, shutdown
	if slices.Contains(longRunning, cmd.Name()) {
		return nil
	}
	ctx = telemetry.ContinueTrace(ctx, os.Getenv)
	name := strings.TrimPrefix(cmd.CommandPath(), g.Config.Name+" ")
	ctx, t.span = telemetry.Tracer(tp).Start(ctx, "slipway "+name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("slipway.command", name)))
	cmd.SetContext(ctx)
	return nil
}

// FinishTelemetry ends the command's span, flushes the spans and writes or
// pushes the metrics. A failure here is a warning on stderr: it does not
// change the command's exit code (the infrastructure already changed).
func (g *Globals) FinishTelemetry(err error) {
	t := &g.tel
	if t.shutdown == nil {
		return // the command never started (bad flags)
	}
	if t.span != nil {
		telemetry.End(t.span, err, g.masker)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	warn := func(what string, err error) {
		fmt.Fprintf(g.Errw, "%s: warning: %s: %s\n", g.Config.Name, what, g.Mask(err.Error()))
	}
	if err := t.shutdown(ctx); err != nil {
		warn("flushing the trace spans", err)
	}
	if t.metricsFile != "" {
		if err := telemetry.WriteFile(t.registry, t.metricsFile); err != nil {
			warn("--metrics-file", err)
		}
	}
	if t.pushgateway != "" {
		var grouping map[string]string
		if envs := g.environments(); envs != "" {
			grouping = map[string]string{"instance": envs}
		}
		if err := telemetry.Push(ctx, t.pushgateway, t.registry, grouping); err != nil {
			warn("--pushgateway", err)
		}
	}
}

// environments lists the environments the run reported, comma-separated.
func (g *Globals) environments() string {
	var envs []string
	for _, it := range g.items {
		if it.Environment != "" && !slices.Contains(envs, it.Environment) {
			envs = append(envs, it.Environment)
		}
	}
	return strings.Join(envs, ",")
}

// telemetryEngineOptions give an engine the run's TracerProvider and
// Metrics (every engine the command line builds gets them).
func (g *Globals) telemetryEngineOptions() []automation.EngineOption {
	var opts []automation.EngineOption
	if g.tel.tp != nil {
		opts = append(opts, automation.WithTracerProvider(g.tel.tp))
	}
	if g.tel.metrics != nil {
		opts = append(opts, automation.WithMetrics(g.tel.metrics))
	}
	return opts
}

// fleetTelemetryOptions are telemetryEngineOptions for the long-running
// fleet processes: the metrics are registered on controller-runtime's
// registry, which their /metrics serves.
func (g *Globals) fleetTelemetryOptions() ([]automation.EngineOption, error) {
	m, err := telemetry.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return nil, err
	}
	opts := []automation.EngineOption{automation.WithMetrics(m)}
	if g.tel.tp != nil {
		opts = append(opts, automation.WithTracerProvider(g.tel.tp))
	}
	return opts, nil
}

// MetricsRegistry returns the run's metric registry (the Slipway series
// of this command's engines), for a server's /metrics.
func (g *Globals) MetricsRegistry() *prometheus.Registry { return g.tel.registry }

// logHandler is the run's slog handler: --log-format on stderr, with
// trace and span IDs and --secret values masked.
func (g *Globals) logHandler(level slog.Level) slog.Handler {
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: g.maskAttr}
	if g.tel.logFormat == "json" {
		h = slog.NewJSONHandler(g.Errw, opts)
	} else {
		h = slog.NewTextHandler(g.Errw, opts)
	}
	return telemetry.LogHandler(h)
}

// maskAttr masks --secret values in a log attribute's value.
func (g *Globals) maskAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Resolve(); v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(g.Mask(v.String()))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			a.Value = slog.StringValue(g.Mask(err.Error()))
		} else if s, ok := v.Any().(fmt.Stringer); ok {
			a.Value = slog.StringValue(g.Mask(s.String()))
		}
	}
	return a
}

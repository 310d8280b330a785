package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	kmeta "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/telemetry"
	"github.com/slipwayhq/slipway/automation/telemetry/telemetrytest"
	"github.com/slipwayhq/slipway/policypacks"
	k8spack "github.com/slipwayhq/slipway/policypacks/kubernetes"
)

// configMaps is a program of a namespace and two ConfigMaps.
func configMaps(kubeconfig, ns string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		prov, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{Kubeconfig: pulumi.String(kubeconfig)})
		if err != nil {
			return err
		}
		n, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ns)}}, pulumi.Provider(prov))
		if err != nil {
			return err
		}
		for _, name := range []string{"a", "b"} {
			if _, err := corev1.NewConfigMap(ctx, name, &corev1.ConfigMapArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: n.Metadata.Name().Elem()},
				Data:     pulumi.StringMap{"GREETING": pulumi.String("hello " + name)},
			}, pulumi.Provider(prov)); err != nil {
				return err
			}
		}
		return nil
	}
}

// newTracedEngine is an engine whose spans go to an OTLP/HTTP receiver.
func newTracedEngine(t *testing.T, opts ...automation.EngineOption) (*automation.Engine, *sdktrace.TracerProvider, *telemetrytest.Receiver) {
	t.Helper()
	rcv := telemetrytest.NewReceiver()
	t.Cleanup(rcv.Close)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(rcv.URL()+"/v1/traces"))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e, err := automation.New(ctx, append([]automation.EngineOption{automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()),
		automation.WithTracerProvider(tp)}, opts...)...)
	require.NoError(t, err)
	return e, tp, rcv
}

// TestTelemetry_SpansOfAnUpWithPolicy: the spans of an up with a policy
// check, received over OTLP/HTTP, form the tree operation → stages
// (policy gate preview, apply) → one span per resource step whose
// duration is the step's Duration, under the CI job's TRACEPARENT.
func TestTelemetry_SpansOfAnUpWithPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e, tp, rcv := newTracedEngine(t)
	dev, err := e.PolicyDir("dev", policypacks.Settings{Kind: "dev"}, k8spack.Pack())
	require.NoError(t, err)
	const ns = "telemetry-spans"
	prog := automation.Program{Project: "telemetry", Stack: "spans", Run: configMaps(cluster.Kubeconfig, ns),
		Plugins: []automation.Plugin{automation.KubernetesPlugin}, Policies: []string{dev}}
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = st.Destroy(context.Background(), optdestroy.RemoveStack()) })

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": "00-" + traceID + "-" + parentID + "-01"})
	up, err := st.Up(ctx)
	require.NoError(t, err)
	require.NoError(t, tp.ForceFlush(ctx))
	spans := rcv.Wait("slipway.up", 30*time.Second)

	byName := map[string][]telemetrytest.Span{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	require.Len(t, byName["slipway.up"], 1, "one operation span: %v", names(spans))
	op := byName["slipway.up"][0]
	assert.Equal(t, traceID, op.TraceID, "the TRACEPARENT's trace is continued")
	assert.Equal(t, parentID, op.ParentID, "the operation span's parent is the CI job's span")
	assert.Equal(t, telemetry.TracerName, op.Scope)
	assert.Equal(t, "telemetry", op.Attrs["slipway.project"])
	assert.Equal(t, "spans", op.Attrs["slipway.environment"])
	assert.Equal(t, "up", op.Attrs["slipway.operation"])
	assert.Equal(t, "succeeded", op.Attrs["slipway.result"])
	assert.Equal(t, fmt.Sprint(up.Changes()), op.Attrs["slipway.changes"])
	assert.Equal(t, "5", op.Attrs["slipway.change.create"], "stack, provider, namespace and two ConfigMaps: %v", up.Summary)
	assert.Equal(t, "STATUS_CODE_OK", op.StatusCode)

	children := map[string]telemetrytest.Span{}
	for _, s := range spans {
		require.Equal(t, traceID, s.TraceID, "every span is in the one trace: %s", s.Name)
		if s.ParentID == op.SpanID {
			children[s.Name] = s
		}
	}
	require.Contains(t, children, "slipway.stage.policy", "the policy gate's preview: %v", names(spans))
	require.Contains(t, children, "slipway.stage.apply")
	gate, apply := children["slipway.stage.policy"], children["slipway.stage.apply"]
	assert.False(t, gate.End.After(apply.Start), "the gate ends before the apply starts")

	var steps []telemetrytest.Span
	for _, s := range byName["slipway.resource"] {
		if s.ParentID == apply.SpanID {
			steps = append(steps, s)
		}
	}
	require.NotEmpty(t, up.Resources)
	require.Len(t, steps, len(up.Resources), "one resource span per step of the up")
	byURN := map[string]telemetrytest.Span{}
	for _, s := range steps {
		byURN[s.Attrs["pulumi.resource.urn"]] = s
	}
	for _, r := range up.Resources {
		s, ok := byURN[r.URN]
		require.True(t, ok, "no span for %s", r.URN)
		assert.False(t, r.Started.IsZero(), "%s has a start", r.URN)
		assert.InDelta(t, r.Duration.Seconds(), s.Duration().Seconds(), 0.001, "%s: span %s, step %s", r.URN, s.Duration(), r.Duration)
		assert.Equal(t, r.Type, s.Attrs["pulumi.resource.type"])
		assert.Equal(t, r.Op, s.Attrs["pulumi.resource.op"])
		assert.False(t, s.Start.Before(apply.Start), "%s starts inside the apply", r.URN)
		assert.False(t, s.End.After(apply.End), "%s ends inside the apply", r.URN)
	}
	assert.Equal(t, "create", byURN[urnOf(up, "kubernetes:core/v1:ConfigMap")].Attrs["pulumi.resource.op"])

	// The run history records the up with its trace.
	store, err := e.Store(ctx)
	require.NoError(t, err)
	defer store.Close()
	recs, err := runs.List(ctx, store, "telemetry", "spans")
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "up", recs[0].Operation)
	assert.Equal(t, runs.Succeeded, recs[0].Result)
	assert.Equal(t, traceID, recs[0].TraceID)
	assert.Equal(t, up.Changes(), recs[0].Changes)
}

func names(spans []telemetrytest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func urnOf(res *outcome.Result, typ string) string {
	for _, r := range res.Resources {
		if r.Type == typ {
			return r.URN
		}
	}
	return ""
}

// TestTelemetry_MetricsAfterPreviewUpDriftAndPolicyBlock: the registry,
// gathered after a preview, an up, a drift found and a policy block,
// holds each series with the right labels and values.
func TestTelemetry_MetricsAfterPreviewUpDriftAndPolicyBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg)
	require.NoError(t, err)
	var mu sync.Mutex
	var events []chatops.Event
	notifier := chatops.NotifierFunc(func(_ context.Context, ev chatops.Event) error {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, ev)
		return nil
	})
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()), automation.WithMetrics(m),
		automation.WithNotifier(notifier))
	require.NoError(t, err)
	const ns = "telemetry-metrics"
	st, err := e.UpsertStack(ctx, automation.Program{Project: "telemetry", Stack: "metrics", Run: configMaps(cluster.Kubeconfig, ns),
		Plugins: []automation.Plugin{automation.KubernetesPlugin}})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = st.Destroy(context.Background(), optdestroy.RemoveStack()) })

	_, err = st.Preview(ctx)
	require.NoError(t, err)
	up, err := st.Up(ctx)
	require.NoError(t, err)
	cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, "a", kmeta.GetOptions{})
	require.NoError(t, err)
	cm.Data["GREETING"] = "tampered"
	_, err = cluster.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, kmeta.UpdateOptions{})
	require.NoError(t, err)
	d, err := st.CheckDrift(ctx)
	require.NoError(t, err)
	require.Len(t, d.Resources, 1)

	bad, err := e.UpsertStack(ctx, automation.Program{Project: "telemetry", Stack: "blocked", Run: badProgram(cluster.Kubeconfig, "telemetry-bad"),
		Plugins: []automation.Plugin{automation.KubernetesPlugin}})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = bad.Destroy(context.Background(), optdestroy.RemoveStack()) })
	prod, err := e.PolicyDir("prod", policypacks.Settings{Kind: "prod"}, k8spack.Pack())
	require.NoError(t, err)
	blocked, err := bad.Preview(ctx, optpreview.Policies(prod))
	require.True(t, automation.IsPolicyBlocked(err), "%v", err)

	// The chat notifications: the up, the drift found, the policy block
	// (previews that pass are not announced).
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	var sent []string
	for _, ev := range got {
		sent = append(sent, string(ev.Kind)+" "+ev.Environment+" "+ev.Operation)
	}
	require.Equal(t, []string{"run.succeeded metrics up", "drift.detected metrics drift", "policy.blocked blocked preview"}, sent)
	assert.Equal(t, 1, got[1].Changes, "one resource drifted")
	assert.Contains(t, strings.Join(got[1].Details, "\n"), "kubernetes:core/v1:ConfigMap", "the drifted resource")
	assert.Contains(t, strings.Join(got[2].Details, "\n"), "no-privileged", "the blocking policy")
	for _, ev := range got {
		assert.Equal(t, "telemetry", ev.Project)
	}

	fams, err := reg.Gather()
	require.NoError(t, err)
	get := func(name string, labels map[string]string) *dto.Metric {
		t.Helper()
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		next:
			for _, mt := range f.Metric {
				got := map[string]string{}
				for _, lp := range mt.Label {
					got[lp.GetName()] = lp.GetValue()
				}
				for k, v := range labels {
					if got[k] != v {
						continue next
					}
				}
				return mt
			}
		}
		t.Fatalf("no series %s%v", name, labels)
		return nil
	}
	env := func(stack string, kv ...string) map[string]string {
		l := map[string]string{"project": "telemetry", "environment": stack}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	for _, c := range []struct{ stack, op, result string }{
		{"metrics", "preview", runs.Succeeded}, {"metrics", "up", runs.Succeeded},
		{"metrics", "drift", runs.Changes}, {"blocked", "preview", runs.Blocked},
	} {
		l := env(c.stack, "operation", c.op, "result", c.result)
		assert.Equal(t, 1.0, get(telemetry.OperationsTotal, l).GetCounter().GetValue(), "%v", l)
		assert.EqualValues(t, 1, get(telemetry.OperationDuration, l).GetHistogram().GetSampleCount(), "%v", l)
	}
	assert.Equal(t, 1.0, get(telemetry.DriftDetectedTotal, env("metrics")).GetCounter().GetValue())
	assert.Equal(t, 1.0, get(telemetry.DriftedResources, env("metrics")).GetGauge().GetValue())
	assert.Equal(t, float64(len(up.Resources)), get(telemetry.ResourcesGauge, env("metrics")).GetGauge().GetValue(),
		"resources after the drift check: %v", d.Summary)
	assert.EqualValues(t, 2, get(telemetry.ResourceStepDuration, map[string]string{"type": "kubernetes:core/v1:ConfigMap", "operation": "create"}).
		GetHistogram().GetSampleCount(), "two ConfigMaps created by the up (the preview's steps do not count)")

	want := map[[3]string]float64{}
	require.NotEmpty(t, blocked.Policy)
	for _, f := range blocked.Policy {
		want[[3]string{f.Pack, f.Policy, string(f.Enforcement)}]++
	}
	require.Contains(t, want, [3]string{"slipway-kubernetes", "no-privileged", "mandatory"}, "%v", want)
	for k, v := range want {
		l := env("blocked", "pack", k[0], "policy", k[1], "enforcement", k[2])
		assert.Equal(t, v, get(telemetry.PolicyViolationsTotal, l).GetCounter().GetValue(), "%v", l)
	}
}

package automation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// recorder is a notifier that keeps the events it is given.
type recorder struct {
	mu     sync.Mutex
	events []chatops.Event
}

func (r *recorder) Notify(_ context.Context, e chatops.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// take returns the events recorded since the last take.
func (r *recorder) take() []chatops.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// kinds lists the kinds of events.
func kinds(evs []chatops.Event) []chatops.Kind {
	out := []chatops.Kind{}
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// notifyEngine is an engine on a file backend in a temporary directory
// that notifies rec.
func notifyEngine(t *testing.T, ctx context.Context, rec *recorder, opts ...automation.EngineOption) *automation.Engine {
	t.Helper()
	e, err := automation.New(ctx, append([]automation.EngineOption{automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()),
		automation.WithBackend("file://" + t.TempDir()), automation.WithPassphrase(""),
		automation.WithResolver(toolchain.New(toolchain.WithLog(io.Discard))), automation.WithNotifier(rec)}, opts...)...)
	require.NoError(t, err)
	return e
}

// exporting is a plugin-less program that only exports its version.
func exporting(project, stack, version string) automation.Program {
	return automation.Program{Project: project, Stack: stack, Version: version, Run: func(ctx *pulumi.Context) error {
		ctx.Export("version", pulumi.String(version))
		return nil
	}}
}

// runsOf reads the run history of a stack.
func runsOf(t *testing.T, ctx context.Context, e *automation.Engine, project, stack string) []runs.Record {
	t.Helper()
	st, err := e.Store(ctx)
	require.NoError(t, err)
	defer st.Close()
	recs, err := runs.List(ctx, st, project, stack)
	require.NoError(t, err)
	return recs
}

// TestNotify_UpSucceededWithTraceID: a successful up sends exactly one
// RunSucceeded event naming the project, the environment and the
// operation, carrying the trace id of the up's span, which the run record
// carries too.
func TestNotify_UpSucceededWithTraceID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec, automation.WithTracerProvider(tp))

	st, err := e.UpsertStack(ctx, exporting("notifytest", "notify-up", "v1"))
	require.NoError(t, err)
	require.Empty(t, rec.take(), "opening a stack is not announced")
	res, err := st.Up(ctx)
	require.NoError(t, err)

	evs := rec.take()
	require.Len(t, evs, 1, "%v", kinds(evs))
	ev := evs[0]
	assert.Equal(t, chatops.RunSucceeded, ev.Kind)
	assert.Equal(t, "notifytest", ev.Project)
	assert.Equal(t, "notify-up", ev.Environment)
	assert.Equal(t, "up", ev.Operation)
	assert.Contains(t, ev.Summary, "notify-up")
	assert.Equal(t, res.Changes(), ev.Changes)
	assert.False(t, ev.Time.IsZero())
	require.Len(t, ev.TraceID, 32, "a trace id: %q", ev.TraceID)
	assert.NotEqual(t, strings.Repeat("0", 32), ev.TraceID)

	// The trace id is the up operation's span's.
	var upTrace string
	for _, s := range exp.GetSpans() {
		if s.Parent.IsValid() {
			continue
		}
		if strings.HasSuffix(s.Name, "up") {
			upTrace = s.SpanContext.TraceID().String()
		}
	}
	assert.Equal(t, upTrace, ev.TraceID, "the event's trace id is the up span's")

	recs := runsOf(t, ctx, e, "notifytest", "notify-up")
	require.Len(t, recs, 1)
	assert.Equal(t, "up", recs[0].Operation)
	assert.Equal(t, runs.Succeeded, recs[0].Result)
	assert.Equal(t, ev.TraceID, recs[0].TraceID)
}

// TestNotify_FailedUpMasksSecrets: an up whose program fails sends one
// RunFailed event whose details hold the error; the program's secret
// config values (a plain secret and the strings inside a JSON secret) are
// masked in the event and in the run record.
func TestNotify_FailedUpMasksSecrets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec)

	const password, token = "hunter2-pw-0001", "tok-9f8e7d6c5b"
	creds, err := json.Marshal(map[string]string{"token": token})
	require.NoError(t, err)
	prog := automation.Program{Project: "notifytest", Stack: "notify-fail",
		Config: map[string]automation.ConfigValue{
			"password": {Value: password, Secret: true},
			"creds":    {Value: string(creds), Secret: true},
		},
		Run: func(ctx *pulumi.Context) error {
			pw, ok := ctx.GetConfig("notifytest:password")
			cj, ok2 := ctx.GetConfig("notifytest:creds")
			if !ok || !ok2 {
				return errors.New("config missing")
			}
			var c struct{ Token string }
			if err := json.Unmarshal([]byte(cj), &c); err != nil {
				return err
			}
			return fmt.Errorf("login refused for password %s with token %s", pw, c.Token)
		}}
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "login refused", "the program's error is reported")
	// Pulumi masks the plain secret itself, not the token inside the JSON
	// secret: masking that is the engine's doing.
	require.Contains(t, err.Error(), token, "the operation's own error is not masked")

	evs := rec.take()
	require.Len(t, evs, 1, "%v", kinds(evs))
	ev := evs[0]
	assert.Equal(t, chatops.RunFailed, ev.Kind)
	assert.Equal(t, "notify-fail", ev.Environment)
	assert.Equal(t, "up", ev.Operation)
	assert.Contains(t, ev.Summary, "notify-fail")
	assert.Contains(t, ev.Summary, "failed")
	details := strings.Join(ev.Details, "\n")
	assert.Contains(t, details, "login refused for password")
	assert.Contains(t, details, "[secret]")
	for _, s := range []string{password, token} {
		assert.NotContains(t, ev.Summary, s)
		assert.NotContains(t, details, s)
	}

	recs := runsOf(t, ctx, e, "notifytest", "notify-fail")
	require.Len(t, recs, 1)
	assert.Equal(t, runs.Failed, recs[0].Result)
	assert.Contains(t, recs[0].Error, "login refused for password")
	for _, s := range []string{password, token} {
		assert.NotContains(t, recs[0].Error, s)
	}
}

// TestNotify_PreviewIsNotAnnounced: a preview sends no event (its run is
// still recorded).
func TestNotify_PreviewIsNotAnnounced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec)
	st, err := e.UpsertStack(ctx, exporting("notifytest", "notify-preview", "v1"))
	require.NoError(t, err)
	_, err = st.Preview(ctx)
	require.NoError(t, err)
	assert.Empty(t, rec.take())
	recs := runsOf(t, ctx, e, "notifytest", "notify-preview")
	require.Len(t, recs, 1, "the preview ran and was recorded")
	assert.Equal(t, "preview", recs[0].Operation)
}

// TestNotify_DeployRollbackAndRollback: a good deploy sends RunSucceeded;
// a deploy whose smoke check fails after good releases sends RunFailed
// (with the smoke check's error) and RollbackDone; Rollback sends
// RollbackDone.
func TestNotify_DeployRollbackAndRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec)
	const project, stack = "notifytest", "notify-deploy"
	lookup := func(v string) (automation.Program, error) { return exporting(project, stack, v), nil }
	release := func(v string) automation.Release {
		return automation.Release{Version: v, Program: exporting(project, stack, v)}
	}

	for _, v := range []string{"v1", "v2"} {
		_, err := e.Deploy(ctx, release(v), lookup)
		require.NoError(t, err, v)
		evs := rec.take()
		require.Len(t, evs, 1, "%s: %v", v, kinds(evs))
		assert.Equal(t, chatops.RunSucceeded, evs[0].Kind, v)
		assert.Equal(t, "deploy", evs[0].Operation, v)
		assert.Equal(t, stack, evs[0].Environment, v)
	}

	// The smoke check's error never passes through Pulumi: the engine masks
	// the program's secret config value in it.
	const apiKey = "api-key-5f4e3d2c1b"
	bad := release("v3")
	bad.Program.Config = map[string]automation.ConfigValue{"apikey": {Value: apiKey, Secret: true}}
	bad.Smoke = func(context.Context, *outcome.Result) error {
		return fmt.Errorf("health endpoint returned 503 for key %s", apiKey)
	}
	d, err := e.Deploy(ctx, bad, lookup)
	var re *automation.ReleaseError
	require.ErrorAs(t, err, &re)
	require.Contains(t, err.Error(), apiKey)
	require.NoError(t, re.RollbackErr)
	assert.Equal(t, "v2", re.Restored)
	require.NotNil(t, d)
	require.True(t, d.RolledBack)
	evs := rec.take()
	require.Equal(t, []chatops.Kind{chatops.RunFailed, chatops.RollbackDone}, kinds(evs))
	for _, ev := range evs {
		assert.Equal(t, project, ev.Project)
		assert.Equal(t, stack, ev.Environment)
		assert.Equal(t, "deploy", ev.Operation)
		details := strings.Join(ev.Details, "\n")
		assert.Contains(t, details, "health endpoint returned 503 for key [secret]", ev.Kind)
		assert.NotContains(t, details, apiKey, ev.Kind)
		assert.NotContains(t, ev.Summary, apiKey, ev.Kind)
	}
	recs := runsOf(t, ctx, e, project, stack)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, "deploy", last.Operation)
	assert.Equal(t, runs.Failed, last.Result)
	assert.Contains(t, last.Error, "health endpoint returned 503 for key [secret]")
	assert.NotContains(t, last.Error, apiKey)
	hist, err := e.Releases(ctx, project, stack)
	require.NoError(t, err)
	var failed int
	for _, r := range hist {
		assert.NotContains(t, r.Cause, apiKey, "release %s", r.ID)
		if r.Status == automation.ReleaseFailed {
			failed++
			assert.Contains(t, r.Cause, "[secret]", "the failed release's cause is kept, masked")
		}
	}
	assert.Equal(t, 1, failed)

	_, target, err := e.Rollback(ctx, project, stack, lookup)
	require.NoError(t, err)
	require.NotNil(t, target)
	assert.Equal(t, "v1", target.Version)
	evs = rec.take()
	require.Len(t, evs, 1, "%v", kinds(evs))
	assert.Equal(t, chatops.RollbackDone, evs[0].Kind)
	assert.Equal(t, "rollback", evs[0].Operation)
	assert.Equal(t, stack, evs[0].Environment)
	assert.Contains(t, evs[0].Summary, stack)
}

// TestNotify_RefusedOperationsLeaveNothing: an operation refused before
// the engine ran — a non-ephemeral environment given to DestroyEphemeral,
// an unknown one given to Rollback — sends no event and writes no run
// record: the backend is as it was, and the unknown name does not appear
// among the environments.
func TestNotify_RefusedOperationsLeaveNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rec := &recorder{}
	e := notifyEngine(t, ctx, rec)
	st, err := e.UpsertStack(ctx, exporting("notifytest", "real", "v1"))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)
	require.Len(t, rec.take(), 1)
	require.Len(t, runsOf(t, ctx, e, "notifytest", "real"), 1)

	_, err = e.DestroyEphemeral(ctx, "notifytest", "real")
	require.True(t, automation.IsNotEphemeral(err), "%v", err)
	lookup := func(v string) (automation.Program, error) { return exporting("notifytest", "typo", v), nil }
	_, _, err = e.Rollback(ctx, "notifytest", "typo", lookup)
	require.True(t, automation.IsUnknownStack(err), "%v", err)

	assert.Empty(t, kinds(rec.take()), "refusals are not announced")
	assert.Len(t, runsOf(t, ctx, e, "notifytest", "real"), 1, "no run record for the refused destroy")
	store, err := e.Store(ctx)
	require.NoError(t, err)
	defer store.Close()
	envs, err := runs.Environments(ctx, store)
	require.NoError(t, err)
	assert.Equal(t, []runs.Env{{Project: "notifytest", Stack: "real"}}, envs, "the unknown name is nowhere")
}

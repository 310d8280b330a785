package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// target records what a rollout did to it.
type target struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error // by call
}

func (t *target) do(call string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, call)
	return t.fail[call]
}

func (t *target) Target() rollout.Funcs {
	return rollout.Funcs{
		SetWeightFunc: func(_ context.Context, w int) error { return t.do(fmt.Sprintf("weight %d", w)) },
		PromoteFunc:   func(context.Context) error { return t.do("promote") },
		AbortFunc:     func(context.Context) error { return t.do("abort") },
	}
}

func (t *target) Calls() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.calls...)
}

// store is a file backend's store: rollouts are records beside the stacks.
func store(t *testing.T) *statestore.Store {
	t.Helper()
	s, err := statestore.Open(context.Background(), "file://"+t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// gate returns a gate giving the verdicts in turn (the last one again).
func gate(name string, verdicts ...rollout.Verdict) rollout.Gate {
	var mu sync.Mutex
	n := 0
	return rollout.GateFunc{GateName: name, CheckFunc: func(context.Context) (rollout.Verdict, any, error) {
		mu.Lock()
		defer mu.Unlock()
		v := verdicts[min(n, len(verdicts)-1)]
		n++
		return v, map[string]any{"measurement": n}, nil
	}}
}

// instant makes pauses pass at once.
func instant(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Now()
	return c
}

func steps(g rollout.Gate) []rollout.Step {
	return []rollout.Step{{Weight: 10}, {Gates: []rollout.Gate{g}}, {Weight: 50}, {Pause: time.Minute}, {Gates: []rollout.Gate{g}}, {Weight: 100}}
}

func TestRun_HealthyCanaryGoesThroughEveryStepThenPromotes(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	var events []string
	s, err := rollout.Run(ctx, st, "shop/prod", "web:1.28", tg.Target(), steps(gate("error-rate", rollout.Successful)),
		rollout.Options{After: instant, OnEvent: func(e rollout.Event) { events = append(events, e.What) }})
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, s.Phase)
	assert.Equal(t, []string{"weight 10", "weight 50", "weight 100", "promote"}, tg.Calls())
	require.Len(t, s.Checks, 2, "every analysis is kept")
	assert.Equal(t, 1, s.Checks[0].Step)
	assert.Equal(t, 4, s.Checks[1].Step)
	assert.Equal(t, []string{"step", "step", "step", "step", "step", "step", "promoted"}, events)

	got, ok, err := rollout.Get(ctx, st, "shop/prod")
	require.NoError(t, err)
	require.True(t, ok, "the record is in the backend")
	assert.Equal(t, rollout.Promoted, got.Phase)
	assert.Equal(t, 6, got.Step)
	require.Len(t, got.Checks, 2)
	assert.Equal(t, map[string]any{"measurement": float64(2)}, got.Checks[1].Detail, "the record keeps what the gate measured")

	again, err := rollout.Run(ctx, st, "shop/prod", "web:1.28", tg.Target(), steps(gate("error-rate", rollout.Failed)), rollout.Options{After: instant})
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, again.Phase, "a finished rollout is not run twice")
	assert.Len(t, tg.Calls(), 4)
}

func TestRun_FailedAnalysisAbortsAndStableIsNeverTouched(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	// Healthy at the first analysis (weight 10), bad at the second (weight 50).
	s, err := rollout.Run(ctx, st, "shop/prod", "web:1.28", tg.Target(), steps(gate("error-rate", rollout.Successful, rollout.Failed)), rollout.Options{After: instant})
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, s.Phase)
	assert.Equal(t, []string{"weight 10", "weight 50", "abort"}, tg.Calls(), "no promotion: stable is untouched")
	assert.Equal(t, "step 4: analysis error-rate failed", s.Cause)
	assert.Equal(t, 0, s.Weight)
	require.Len(t, s.Checks, 2)
	assert.Equal(t, rollout.Failed, s.Checks[1].Verdict)
}

func TestRun_GateErrorAbortsWithTheError(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	broken := rollout.GateFunc{GateName: "prometheus", CheckFunc: func(context.Context) (rollout.Verdict, any, error) {
		return "", nil, errors.New("query failed: connection refused")
	}}
	s, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), []rollout.Step{{Weight: 20}, {Gates: []rollout.Gate{broken}}}, rollout.Options{})
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, s.Phase)
	assert.Equal(t, "step 1: analysis prometheus failed: query failed: connection refused", s.Cause)
	assert.Equal(t, []string{"weight 20", "abort"}, tg.Calls())
}

func TestRun_InconclusivePausesUntilPromoted(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	g := gate("error-rate", rollout.Inconclusive, rollout.Successful)
	s, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), steps(g), rollout.Options{After: instant})
	require.NoError(t, err)
	assert.Equal(t, rollout.Paused, s.Phase)
	assert.Equal(t, 1, s.Step)
	assert.Contains(t, s.Cause, "inconclusive")
	assert.Equal(t, []string{"weight 10"}, tg.Calls(), "neither promoted nor aborted")

	_, err = rollout.Run(ctx, st, "e", "v3", tg.Target(), steps(g), rollout.Options{After: instant})
	require.ErrorIs(t, err, rollout.ErrInProgress, "one rollout at a time")

	_, err = rollout.Promote(ctx, st, "e")
	require.NoError(t, err)
	s, err = rollout.Run(ctx, st, "e", "v2", tg.Target(), steps(g), rollout.Options{After: instant})
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, s.Phase)
	assert.Equal(t, []string{"weight 10", "weight 50", "weight 100", "promote"}, tg.Calls())
	require.Len(t, s.Checks, 3, "the inconclusive analysis and the two after it")
	assert.Equal(t, rollout.Inconclusive, s.Checks[0].Verdict)
}

func TestRun_PauseUntilPromoted(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	plan := []rollout.Step{{Weight: 10}, {UntilPromoted: true}, {Weight: 100}}
	s, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), plan, rollout.Options{})
	require.NoError(t, err)
	assert.Equal(t, rollout.Paused, s.Phase)
	s, err = rollout.Run(ctx, st, "e", "v2", tg.Target(), plan, rollout.Options{})
	require.NoError(t, err)
	assert.Equal(t, rollout.Paused, s.Phase, "running again does not pass the pause")

	_, err = rollout.Promote(ctx, st, "nothing")
	require.ErrorContains(t, err, "no rollout nothing")
	_, err = rollout.Promote(ctx, st, "e")
	require.NoError(t, err)
	_, err = rollout.Promote(ctx, st, "e")
	require.ErrorContains(t, err, "is Progressing, not Paused")
	s, err = rollout.Run(ctx, st, "e", "v2", tg.Target(), plan, rollout.Options{})
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, s.Phase)
	assert.Equal(t, []string{"weight 10", "weight 100", "promote"}, tg.Calls(), "the pause held until promoted, and only then")
}

// A process stopped in a pause (its context cancelled, as a killed process
// stops) leaves the record at that step; Run again resumes there and waits
// only what is left of the pause.
func TestRun_ResumesAtTheStepItWasIn(t *testing.T) {
	st, tg := store(t), &target{}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	plan := []rollout.Step{{Weight: 10}, {Pause: 10 * time.Minute}, {Weight: 100}}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan time.Duration, 1)
	done := make(chan error, 1)
	go func() {
		_, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), plan, rollout.Options{Now: clock, After: func(d time.Duration) <-chan time.Time {
			waiting <- d
			return nil // never: the process is killed in the pause
		}})
		done <- err
	}()
	assert.Equal(t, 10*time.Minute, <-waiting)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	s, ok, err := rollout.Get(context.Background(), st, "e")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 1, s.Step, "the record is at the pause")
	assert.Equal(t, rollout.Progressing, s.Phase)

	now = now.Add(4 * time.Minute)
	var waited []time.Duration
	s, err = rollout.Run(context.Background(), st, "e", "v2", tg.Target(), plan, rollout.Options{Now: clock, After: func(d time.Duration) <-chan time.Time {
		waited = append(waited, d)
		return instant(d)
	}})
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, s.Phase)
	assert.Equal(t, []time.Duration{6 * time.Minute}, waited, "only what is left of the pause")
	assert.Equal(t, []string{"weight 10", "weight 100", "promote"}, tg.Calls(), "the weight of the first step is not set again")

	_, err = rollout.Run(context.Background(), st, "e", "v3", tg.Target(), []rollout.Step{{Weight: 50}}, rollout.Options{})
	require.NoError(t, err, "a finished rollout's record is replaced by the next")
}

func TestRun_ResumingWithOtherStepsIsRefused(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	_, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), []rollout.Step{{Weight: 10}, {UntilPromoted: true}}, rollout.Options{})
	require.NoError(t, err)
	_, err = rollout.Run(ctx, st, "e", "v2", tg.Target(), []rollout.Step{{Weight: 20}, {UntilPromoted: true}}, rollout.Options{})
	require.ErrorContains(t, err, "runs the steps [weight 10 pause until promoted], not [weight 20 pause until promoted]; abort it")
}

func TestAbort_RemovesTheCanaryAndRecordsTheCause(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	_, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), []rollout.Step{{Weight: 10}, {UntilPromoted: true}}, rollout.Options{})
	require.NoError(t, err)
	s, err := rollout.Abort(ctx, st, "e", tg.Target(), "aborted by ops")
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, s.Phase)
	assert.Equal(t, "aborted by ops", s.Cause)
	assert.Equal(t, []string{"weight 10", "abort"}, tg.Calls())
	s, err = rollout.Abort(ctx, st, "e", tg.Target(), "again")
	require.NoError(t, err)
	assert.Equal(t, "aborted by ops", s.Cause, "an aborted rollout stays as it was")
	assert.Len(t, tg.Calls(), 2)
}

func TestRun_TargetFailureAbortsAndAFailedAbortIsAnError(t *testing.T) {
	ctx, st := context.Background(), store(t)
	tg := &target{fail: map[string]error{"weight 50": errors.New("canary never became Ready")}}
	s, err := rollout.Run(ctx, st, "e", "v2", tg.Target(), []rollout.Step{{Weight: 10}, {Weight: 50}}, rollout.Options{})
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, s.Phase)
	assert.Equal(t, "step 1 (weight 50): canary never became Ready", s.Cause)

	tg = &target{fail: map[string]error{"promote": errors.New("smoke check: HTTP 500")}}
	s, err = rollout.Run(ctx, st, "g", "v2", tg.Target(), []rollout.Step{{Weight: 10}}, rollout.Options{})
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, s.Phase, "a failed promotion goes back to stable")
	assert.Equal(t, "promotion: smoke check: HTTP 500", s.Cause)
	assert.Equal(t, []string{"weight 10", "promote", "abort"}, tg.Calls())

	tg = &target{fail: map[string]error{"weight 10": errors.New("boom"), "abort": errors.New("cluster gone")}}
	s, err = rollout.Run(ctx, st, "f", "v2", tg.Target(), []rollout.Step{{Weight: 10}}, rollout.Options{})
	require.ErrorContains(t, err, "removing the canary failed too: cluster gone")
	assert.NotEqual(t, rollout.Aborted, s.Phase)
}

func TestValidate_NamesTheStepAndTheFix(t *testing.T) {
	g := gate("g", rollout.Successful)
	for _, tc := range []struct {
		steps []rollout.Step
		want  string
	}{
		{nil, "no steps"},
		{[]rollout.Step{{}}, "steps[0]: set exactly one of Preview, Weight, Pause, UntilPromoted or Gates (0 are set)"},
		{[]rollout.Step{{Weight: 10}, {Weight: 20, Gates: []rollout.Gate{g}}}, "steps[1]: set exactly one"},
		{[]rollout.Step{{Weight: 101}}, "steps[0].Weight: 101 is out of range; use 1-100"},
		{[]rollout.Step{{Pause: -time.Second}}, "steps[0].Pause: -1s is negative"},
		{[]rollout.Step{{Gates: []rollout.Gate{rollout.GateFunc{}}}}, "steps[0].Gates[0]: a gate needs a name"},
	} {
		assert.ErrorContains(t, rollout.Validate(tc.steps), tc.want)
	}
	_, err := rollout.Run(context.Background(), store(t), "e", "", (&target{}).Target(), []rollout.Step{{Weight: 1}}, rollout.Options{})
	assert.ErrorContains(t, err, "version is empty")
}

// TestCheck_AnalysisAndMaskedSurviveTheRecord: an analysis check read back
// from its JSON is still an analysis result, and Masked hides a secret in
// its cause, error, message, measurement errors and any other detail.
func TestCheck_AnalysisAndMaskedSurviveTheRecord(t *testing.T) {
	v := 0.25
	s := rollout.State{Name: "shop/dev", Version: "v2", Plan: []string{"analysis error-rate", "analysis smoke"}, Cause: "token hunter2-x refused",
		Checks: []rollout.Check{
			{Step: 0, Gate: "error-rate", Verdict: rollout.Failed, Detail: analysis.Result{Metric: "error-rate", Message: "hunter2-x",
				Measurements: []analysis.Measurement{{Value: &v, Phase: analysis.PhaseFailed}, {Phase: analysis.PhaseError, Error: "key hunter2-x"}}}},
			{Step: 1, Gate: "smoke", Verdict: rollout.Successful, Detail: map[string]any{"body": "hunter2-x"}, Error: "hunter2-x"},
		}}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var back rollout.State
	require.NoError(t, json.Unmarshal(b, &back))
	res, ok := back.Checks[0].Analysis()
	require.True(t, ok, "%T", back.Checks[0].Detail)
	require.Len(t, res.Measurements, 2)
	assert.Equal(t, 0.25, *res.Measurements[0].Value)
	_, ok = back.Checks[1].Analysis()
	assert.False(t, ok, "a detail that is not an analysis")

	masked := back.Masked(mask.New("hunter2-x"))
	b, err = json.Marshal(masked)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "hunter2-x")
	assert.Equal(t, "token [secret] refused", masked.Cause)
	res, ok = masked.Checks[0].Analysis()
	require.True(t, ok)
	assert.Equal(t, "key [secret]", res.Measurements[1].Error)
	assert.Contains(t, back.Checks[1].Error, "hunter2-x", "the original is left as it was")
	assert.Equal(t, "analysis", rollout.StepKind(masked.Plan[0]))
}

// TestRun_SecretsAreMaskedInTheRecord: with Options.Secrets, a gate's
// error and the abort's cause naming a secret are saved, returned and
// sent masked.
func TestRun_SecretsAreMaskedInTheRecord(t *testing.T) {
	ctx, st, tg := context.Background(), store(t), &target{}
	g := rollout.GateFunc{GateName: "error-rate", CheckFunc: func(context.Context) (rollout.Verdict, any, error) {
		return rollout.Failed, map[string]any{"url": "http://x/?token=hunter2-x"}, errors.New("token hunter2-x refused")
	}}
	var events []rollout.Event
	s, err := rollout.Run(ctx, st, "shop/dev", "v2", tg.Target(), []rollout.Step{{Weight: 10}, {Gates: []rollout.Gate{g}}},
		rollout.Options{After: instant, Secrets: mask.New("hunter2-x"), OnEvent: func(ev rollout.Event) { events = append(events, ev) }})
	require.NoError(t, err)
	require.Equal(t, rollout.Aborted, s.Phase)
	assert.Equal(t, "step 1: analysis error-rate failed: token [secret] refused", s.Cause)
	saved, ok, err := rollout.Get(ctx, st, "shop/dev")
	require.NoError(t, err)
	require.True(t, ok)
	b, err := json.Marshal(saved)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "hunter2-x")
	assert.Contains(t, string(b), "token=[secret]")
	require.NotEmpty(t, events)
	b, err = json.Marshal(events[len(events)-1].State)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "hunter2-x")
}

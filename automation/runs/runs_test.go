package runs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/policypacks"
)

func store(t *testing.T) *statestore.Store {
	t.Helper()
	d, err := statestore.FileDriver(t.TempDir())
	require.NoError(t, err)
	st := statestore.New(d)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func TestFromResult_DriftPathsFindingsAndRedactedError(t *testing.T) {
	res := &outcome.Result{Operation: "refresh-preview", Project: "web", Stack: "dev", Duration: 1500 * time.Millisecond,
		Summary: map[string]int{"update": 1, "same": 2},
		Resources: []outcome.ResourceChange{
			{URN: "urn:a", Type: "kubernetes:core/v1:ConfigMap", Op: "update",
				Properties: []outcome.PropertyChange{{Path: "data.color", Expected: "blue", Actual: "hunter2-red"}}},
			{URN: "urn:b", Type: "kubernetes:apps/v1:Deployment", Op: "same"},
		},
		Policy: []policypacks.Finding{{Pack: "slipway-kubernetes", Policy: "no-latest-tag", Enforcement: "mandatory"}}}
	r := runs.FromResult("drift", res, errors.New("boom: token hunter2 refused"), runs.Changes, mask.New("hunter2"))
	assert.Equal(t, "web", r.Project)
	assert.Equal(t, "dev", r.Stack)
	assert.Equal(t, runs.Changes, r.Result)
	assert.Equal(t, 1, r.Changes)
	assert.Equal(t, 1500*time.Millisecond, r.Duration)
	assert.Equal(t, []runs.Drifted{{URN: "urn:a", Type: "kubernetes:core/v1:ConfigMap", Properties: []string{"data.color"}}}, r.Drift)
	assert.Len(t, r.Findings, 1)
	assert.Equal(t, "boom: token [secret] refused", r.Error)
	b, err := r.MarshalJSON()
	require.NoError(t, err)
	assert.NotContains(t, string(b), "hunter2", "no property value and no secret is stored")
	assert.Contains(t, string(b), `"durationSeconds":1.5`)
}

// TestFromResult_NilMaskerHidesCiphertexts: without secret values a
// record still never stores a ciphertext or a serialised secret's value.
func TestFromResult_NilMaskerHidesCiphertexts(t *testing.T) {
	err := errors.New(`up failed: v1:QUJDREVGR0hJSktM:c2VjcmV0LWNpcGhlcnRleHQ= in {"plaintext":"\"pw-123\""}`)
	r := runs.FromResult("up", nil, err, runs.Failed, nil)
	assert.Equal(t, `up failed: [secret] in {"plaintext":"[secret]"}`, r.Error)
}

func TestWriteList_RoundTripOrderAndBound(t *testing.T) {
	ctx := context.Background()
	st := store(t)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range runs.MaxKept + 3 {
		require.NoError(t, runs.Write(ctx, st, runs.Record{Project: "web", Stack: "dev", Operation: "up", Result: runs.Succeeded,
			Started: t0.Add(time.Duration(i) * time.Minute), Duration: time.Duration(i) * time.Second, Changes: i}))
	}
	require.NoError(t, runs.Write(ctx, st, runs.Record{Project: "web", Stack: "qa", Operation: "preview", Result: runs.Failed, Started: t0}))
	got, err := runs.List(ctx, st, "web", "dev")
	require.NoError(t, err)
	require.Len(t, got, runs.MaxKept, "the oldest runs beyond the bound are removed")
	assert.Equal(t, 3, got[0].Changes, "oldest kept first")
	assert.Equal(t, runs.MaxKept+2, got[len(got)-1].Changes)
	assert.Equal(t, time.Duration(runs.MaxKept+2)*time.Second, got[len(got)-1].Duration)
	assert.Equal(t, t0.Add(time.Duration(runs.MaxKept+2)*time.Minute), got[len(got)-1].Started)

	_, err = releases.Write(ctx, st, releases.Record{ID: statestore.NewReleaseName(t0), Project: "shop", Stack: "prod", Status: releases.Applied}, nil)
	require.NoError(t, err)
	envs, err := runs.Environments(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, []runs.Env{{Project: "shop", Stack: "prod"}, {Project: "web", Stack: "dev"}, {Project: "web", Stack: "qa"}}, envs)

	assert.Error(t, runs.Write(ctx, st, runs.Record{Operation: "up"}), "a record needs its stack")
}

// TestSetChecks_RolloutAndGatesKeptMaskedAndReadBack: a rollout's record
// and a deploy's gate checks are kept masked, and read back from the
// backend their analyses still give every measurement.
func TestSetChecks_RolloutAndGatesKeptMaskedAndReadBack(t *testing.T) {
	ctx, st := context.Background(), store(t)
	v := 0.41
	res := analysis.Result{Metric: "error-rate", Phase: analysis.PhaseFailed,
		Measurements: []analysis.Measurement{{Value: &v, Phase: analysis.PhaseFailed}, {Phase: analysis.PhaseError, Error: "token hunter2-x"}}}
	ro := &rollout.State{Name: "web/dev", Version: "v2", Phase: rollout.Aborted, Cause: "token hunter2-x refused",
		Checks: []rollout.Check{{Step: 1, Gate: "error-rate", Verdict: rollout.Failed, Detail: res}}}
	r := runs.Record{Project: "web", Stack: "dev", Operation: "rollout", Result: runs.Failed, Started: time.Now()}
	r.SetChecks(ro, []rollout.Check{{Gate: "smoke", Verdict: rollout.Failed, Error: "hunter2-x"}}, mask.New("hunter2-x"))
	r.SetChecks(&rollout.State{}, nil, nil)
	require.NoError(t, runs.Write(ctx, st, r))
	recs, err := runs.List(ctx, st, "web", "dev")
	require.NoError(t, err)
	require.Len(t, recs, 1)
	got := recs[0]
	require.NotNil(t, got.Rollout, "a rollout never started does not replace it")
	assert.Equal(t, "token [secret] refused", got.Rollout.Cause)
	require.Len(t, got.Rollout.Checks, 1)
	back, ok := got.Rollout.Checks[0].Analysis()
	require.True(t, ok)
	require.Len(t, back.Measurements, 2)
	assert.Equal(t, 0.41, *back.Measurements[0].Value)
	assert.Equal(t, "token [secret]", back.Measurements[1].Error)
	require.Len(t, got.Checks, 1)
	assert.Equal(t, "[secret]", got.Checks[0].Error)
	assert.Contains(t, ro.Cause, "hunter2-x", "the rollout's own record is left as it was")
}

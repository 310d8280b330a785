package runner

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// A Run whose program hangs past spec.timeout: the runner stops the
// engine, the Run fails with reason Timeout (status and Event), and the
// runner releases its Lease and goes on.
func TestRunTimeout_HungProgramFailsWithReasonTimeout(t *testing.T) {
	f := newFixture(t, "rt-timeout")
	g := newGate(t, "hung") // never released: the program hangs
	f.start("runner-timeout")
	run := f.run("hung-1", "hung", v1alpha1.OpUp, `{"Data":{"a":"b"}}`)
	// Long enough for the engine to start the program on a loaded machine
	// (at 5 s, CI's load once timed the Run out before the program ran).
	run.Spec.Timeout = &metav1.Duration{Duration: 20 * time.Second}
	f.create(run)
	select {
	case <-g.entered:
	case <-time.After(5 * time.Minute):
		t.Fatal("the program never started")
	}
	entered := time.Now()

	got := f.finished("hung-1")
	took := time.Since(entered)
	assert.Equal(t, v1alpha1.RunFailed, got.Status.Phase, statusJSON(got))
	assert.Equal(t, v1alpha1.ReasonTimeout, got.Status.Reason, statusJSON(got))
	assert.Contains(t, got.Status.Message, "spec.timeout 20s")
	assert.Less(t, took, 60*time.Second, "the engine is stopped soon after the timeout")
	evs := f.waitEvent("hung-1", "Failed")
	assert.Equal(t, 1, countReason(evs, "Failed"))
	err := kube.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "run-hung-1"}, &coordinationv1.Lease{})
	assert.True(t, apierrors.IsNotFound(err), "the lease is released: %v", err)

	// The runner is free for the next Run (the gate lets later runs pass).
	f.create(f.run("hung-2", "hung", v1alpha1.OpUp, `{"Data":{"a":"b"}}`))
	f.succeeded("hung-2")
}

// A Run naming a definition this runner's binary does not have (runners and
// operator rolled at different times) is not claimed nor failed: the
// runner leaves it Pending with an Event, and a runner that has the
// definition runs it. A destroy needs no definition and is never left.
func TestUnknownDefinition_LeftForARunnerThatHasIt(t *testing.T) {
	f := newFixture(t, "rt-unknown")
	f.start("runner-old", func(o *Options) { o.Registry = fleet.Registry{} })
	f.create(f.run("newprog-1", "newprog", v1alpha1.OpUp, `{"Data":{"a":"b"}}`))
	evs := f.waitEvent("newprog-1", EventDefinitionUnknown)
	i := -1
	for j, e := range evs {
		if e.Reason == EventDefinitionUnknown {
			i = j
		}
	}
	require.GreaterOrEqual(t, i, 0)
	assert.Contains(t, evs[i].Note, `no definition "cm"`)
	assert.Contains(t, evs[i].Note, "runner-old")
	var run v1alpha1.Run
	require.NoError(t, kube.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "newprog-1"}, &run))
	assert.Empty(t, run.Status.Phase, "not claimed: %s", statusJSON(&run))
	assert.Zero(t, run.Status.Attempts)

	// A destroy is never left: the state says what to delete.
	destroy := f.run("gone-1", "gone", v1alpha1.OpDestroy, `{"Data":{"a":"b"}}`)
	destroy.Spec.Definition, destroy.Spec.Stack = "removed", "fleettest/gone"
	f.create(destroy)
	assert.Contains(t, f.succeeded("gone-1").Status.Message, "nothing to destroy")

	f.start("runner-new")
	got := f.succeeded("newprog-1")
	assert.Equal(t, "runner-new", got.Status.Runner)
	assert.EqualValues(t, 1, got.Status.Attempts)
}

// TestStandIn: a stand-in runner claims, leases and completes Runs after
// its fixed delay with a plausible success, and never starts an engine
// (the backend directory stays empty, the program's ConfigMap is never
// created), so a simulation measures only the operator and the API server.
func TestStandIn(t *testing.T) {
	f := newFixture(t, "rt-standin")
	const delay = 700 * time.Millisecond
	up := f.run("standin-1", "standin", v1alpha1.OpUp, `{"Data":{"k":"v"}}`)
	up.Spec.Stack = "fleettest/standin"
	f.create(up)
	started := time.Now()
	f.start("runner-standin", func(o *Options) { o.StandIn = delay })

	run := f.succeeded("standin-1")
	// A lower bound, never a wall-clock limit: the Run cannot end before
	// the stand-in's delay.
	assert.GreaterOrEqual(t, time.Since(started), delay)
	assert.Equal(t, "runner-standin", run.Status.Runner)
	assert.Equal(t, "fleettest/standin", run.Status.Stack)
	assert.Contains(t, run.Status.Message, "stand-in")
	assert.Empty(t, run.Status.Changes)
	require.NotNil(t, run.Status.StartTime)
	require.NotNil(t, run.Status.CompletionTime)
	assert.False(t, run.Status.CompletionTime.Before(run.Status.StartTime))
	assert.NotEmpty(t, run.Status.Lease)
	f.waitEvent("standin-1", "Succeeded")

	drift := f.run("standin-2", "standin", v1alpha1.OpDrift, `{"Data":{"k":"v"}}`)
	drift.Spec.Stack = "fleettest/standin"
	f.create(drift)
	run = f.succeeded("standin-2")
	assert.Empty(t, run.Status.Drift, "a stand-in drift check finds no drift")
	assert.False(t, run.Status.Remediated)
	assert.Equal(t, "runner-standin", run.Status.Runner)
	// A routine drift check that found nothing sends no Event: a later
	// up's Succeeded Event, sent by the same recorder after it, is seen
	// first, then the drift check's Events are looked at.
	later := f.run("standin-3", "standin", v1alpha1.OpUp, `{"Data":{"k":"v"}}`)
	later.Spec.Stack = "fleettest/standin"
	f.create(later)
	f.succeeded("standin-3")
	f.waitEvent("standin-3", "Succeeded")
	assert.Empty(t, f.events("standin-2"), "a quiet drift check's Events")

	entries, err := os.ReadDir(f.state)
	require.NoError(t, err)
	assert.Empty(t, entries, "the stand-in wrote to the backend")
	_, err = configMap(t, "standin")
	assert.True(t, apierrors.IsNotFound(err), "the stand-in ran the program: %v", err)
}

// TestStandIn_NegativeIsRefused: a negative StandIn names the option.
func TestStandIn_NegativeIsRefused(t *testing.T) {
	_, err := New(cluster.Config, Options{StandIn: -time.Second, WorkDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Options.StandIn")
}

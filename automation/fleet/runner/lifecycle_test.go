package runner

import (
	"context"
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

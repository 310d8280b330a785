package slipwaytest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/slipwaytest"
)

// TestDrill_FailsWhenTheRecoveryDoesNothing: a fault nobody repairs fails
// the drill at its bound, no sooner and not much later, with the health
// check's last error; RunDrill fails the test.
func TestDrill_FailsWhenTheRecoveryDoesNothing(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	d := slipwaytest.Drill{
		Name:     "nothing repairs it",
		Inject:   func(context.Context) error { broken.Store(true); return nil },
		Recover:  func(context.Context) error { return nil }, // a recovery that does nothing
		Healthy:  func(context.Context) (bool, error) { return !broken.Load(), errors.New("0/2 pods ready") },
		Within:   300 * time.Millisecond,
		Interval: 20 * time.Millisecond,
	}
	start := time.Now()
	_, err := d.Run(context.Background())
	elapsed := time.Since(start)
	var de *slipwaytest.DrillError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, slipwaytest.StageHealthy, de.Stage)
	assert.Equal(t, "nothing repairs it", de.Drill)
	assert.GreaterOrEqual(t, elapsed, d.Within, "it waits the whole bound")
	assert.Less(t, elapsed, d.Within+2*time.Second, "and gives up at the bound")
	assert.Greater(t, de.Polls, 1, "it polls, not checks once")
	assert.EqualError(t, de.Err, "0/2 pods ready")
	assert.Contains(t, err.Error(), "not healthy within 300ms")

	fake := newFake(t)
	fake.do(func() { slipwaytest.RunDrill(fake, d) })
	assert.True(t, fake.Failed(), "RunDrill fails the test")
	assert.Contains(t, fake.errors(), "drill nothing repairs it: not healthy within 300ms")
}

// TestDrill_MeasuresTheRecovery: the environment is healthy once the
// repair has run; the recovery is timed from the injection, and includes
// the repair.
func TestDrill_MeasuresTheRecovery(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	const repair = 150 * time.Millisecond
	res := slipwaytest.RunDrill(t, slipwaytest.Drill{
		Name:   "repaired",
		Inject: func(context.Context) error { broken.Store(true); return nil },
		Recover: func(ctx context.Context) error {
			select {
			case <-time.After(repair):
			case <-ctx.Done():
				return ctx.Err()
			}
			broken.Store(false)
			return nil
		},
		Healthy:  func(context.Context) (bool, error) { return !broken.Load(), nil },
		Within:   10 * time.Second,
		Interval: 10 * time.Millisecond,
	})
	assert.Equal(t, "repaired", res.Name)
	assert.GreaterOrEqual(t, res.Recover, repair)
	assert.GreaterOrEqual(t, res.Recovery, res.Recover, "the recovery includes the repair")
	assert.Less(t, res.Recovery, 10*time.Second)
	assert.Equal(t, 1, res.Polls, "healthy at the first poll after the repair")
}

// TestDrill_HealsWithoutARecover: without Recover the drill polls until
// the environment has healed itself, treating errors as not yet healthy.
func TestDrill_HealsWithoutARecover(t *testing.T) {
	t.Parallel()
	var healed atomic.Bool
	res := slipwaytest.RunDrill(t, slipwaytest.Drill{
		Name: "self-healing",
		Inject: func(context.Context) error {
			time.AfterFunc(100*time.Millisecond, func() { healed.Store(true) })
			return nil
		},
		Healthy: func(context.Context) (bool, error) {
			if !healed.Load() {
				return false, errors.New("deployment web: 0/2 available")
			}
			return true, nil
		},
		Within:   10 * time.Second,
		Interval: 10 * time.Millisecond,
	})
	assert.GreaterOrEqual(t, res.Recovery, 100*time.Millisecond)
	assert.Greater(t, res.Polls, 1)
	assert.Zero(t, res.Recover)
}

// TestDrill_FailedInjectionOrRecoveryIsNamed: a fault that cannot be made
// fails before any repair; a failed repair fails the drill at once with
// its error; an invalid drill is refused before anything is injected.
func TestDrill_FailedInjectionOrRecoveryIsNamed(t *testing.T) {
	t.Parallel()
	healthy := func(context.Context) (bool, error) { return true, nil }
	recovered := false
	_, err := slipwaytest.Drill{Name: "no fault", Within: time.Second, Healthy: healthy,
		Inject:  func(context.Context) error { return errors.New("no pod matches") },
		Recover: func(context.Context) error { recovered = true; return nil }}.Run(context.Background())
	var de *slipwaytest.DrillError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, slipwaytest.StageInject, de.Stage)
	assert.False(t, recovered, "no repair without a fault")
	assert.EqualError(t, err, "slipwaytest: drill no fault: injecting the fault: no pod matches")

	boom := errors.New("the rerun failed")
	_, err = slipwaytest.Drill{Name: "bad repair", Within: time.Minute, Healthy: healthy,
		Inject:  func(context.Context) error { return nil },
		Recover: func(context.Context) error { return boom }}.Run(context.Background())
	require.ErrorAs(t, err, &de)
	assert.Equal(t, slipwaytest.StageRecover, de.Stage)
	assert.ErrorIs(t, err, boom)
	assert.Less(t, de.Elapsed, time.Minute, "a failed repair does not wait for the bound")

	injected := false
	inject := func(context.Context) error { injected = true; return nil }
	for _, d := range []slipwaytest.Drill{
		{Inject: inject, Healthy: healthy, Within: time.Second},
		{Name: "x", Healthy: healthy, Within: time.Second},
		{Name: "x", Inject: inject, Within: time.Second},
		{Name: "x", Inject: inject, Healthy: healthy},
	} {
		_, err := d.Run(context.Background())
		assert.Error(t, err)
	}
	assert.False(t, injected, "an invalid drill injects nothing")
}

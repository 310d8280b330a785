package lease

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// fakeKeeper is the Keeper of runner "me" on a fake API.
func fakeKeeper(t *testing.T, duration, renewDeadline time.Duration, funcs interceptor.Funcs, objs ...client.Object) *Keeper {
	t.Helper()
	s, err := fleet.Scheme()
	require.NoError(t, err)
	return &Keeper{Client: interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build(), funcs),
		Identity: "me", Duration: duration, RenewDeadline: renewDeadline, FenceDir: t.TempDir()}
}

// testLog is a logger naming the test.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
}

func heldRun(ns, name, holder string) (*v1alpha1.Run, *coordinationv1.Lease) {
	now := metav1.Now()
	run := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Status: v1alpha1.RunStatus{Phase: v1alpha1.RunRunning, Runner: holder, RunnerHost: "other-host", Attempts: 1,
			ClaimTime: &now, StartTime: &now, Lease: "run-" + name}}
	renewed := metav1.NewMicroTime(now.Time)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "run-" + name, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](1),
			AcquireTime: &renewed, RenewTime: &renewed}}
	return run, lease
}

// TestObserve_IgnoresTheLeasesOwnDuration: a Lease whose holder (or
// anyone who can write Leases) set leaseDurationSeconds to 1 is still
// waited on for this runner's own Duration before it counts as expired.
func TestObserve_IgnoresTheLeasesOwnDuration(t *testing.T) {
	t.Parallel()
	run, lease := heldRun("fence-unit", "short-lease", "other-runner")
	k := fakeKeeper(t, 4*time.Second, 0, interceptor.Funcs{}, lease)
	ctx := context.Background()
	observed, err := k.Get(ctx, run)
	require.NoError(t, err)
	require.NotNil(t, observed)
	expired, wait := k.Observe(run, observed)
	assert.False(t, expired)
	assert.Equal(t, 4*time.Second, wait, "the first sight waits the configured Duration, not the Lease's 1s")
	time.Sleep(1500 * time.Millisecond) // past the Lease's own 1s: the duration under test
	observed, err = k.Get(ctx, run)
	require.NoError(t, err)
	expired, wait = k.Observe(run, observed)
	assert.False(t, expired, "not expired after the Lease's own 1s")
	assert.Greater(t, wait, 2*time.Second)
}

// TestWatchdog_KillsTheEngineWhenRenewalsBlock: renewals that block (an
// API server that accepts the connection and never answers) do not hold
// the engine past RenewDeadline: the watchdog removes the fence file (the
// engine's writes are refused) and cancels the Run with automation.ErrKill
// (its whole process tree is killed, see automation's
// TestPulumiCLI_KillCauseKillsTheWholeTreeAtOnce), while the renewal is
// still blocked.
func TestWatchdog_KillsTheEngineWhenRenewalsBlock(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	var blocked atomic.Int32
	funcs := interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		if _, ok := obj.(*coordinationv1.Lease); ok {
			blocked.Add(1)
			<-release // ignores ctx, as a stopped network would
			return errors.New("released")
		}
		return c.Update(ctx, obj, opts...)
	}}
	run, lease := heldRun("fence-unit", "blocked", "me")
	k := fakeKeeper(t, 3*time.Second, time.Second, funcs, lease)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	start := time.Now()
	h, err := k.Beat(run, lease, start, cancel, testLog(t))
	require.NoError(t, err)
	deadline, token, err := fence.Read(h.Fence())
	require.NoError(t, err)
	assert.Equal(t, "fence-unit/blocked#1", token)
	assert.WithinDuration(t, start.Add(time.Second), deadline, time.Millisecond)
	_, done, err := fence.Check(context.Background(), h.Fence(), "write", "k")
	done()
	require.NoError(t, err, "the engine may write before the deadline")

	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the watchdog did not cancel the run")
	}
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, time.Second)
	assert.Less(t, took, 2*time.Second, "cancelled at the renew deadline, well before LeaseDuration")
	assert.Positive(t, blocked.Load(), "a renewal was blocked meanwhile")
	cause := context.Cause(ctx)
	assert.ErrorIs(t, cause, automation.ErrKill, "the engine's tree is killed, not interrupted")
	assert.ErrorIs(t, cause, ErrLost)
	_, done, err = fence.Check(context.Background(), h.Fence(), "write", "k")
	done()
	assert.ErrorIs(t, err, fence.ErrFenced, "the engine's writes are refused")
	_, statErr := os.Stat(h.Fence())
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}

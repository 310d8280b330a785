package runner

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

// fakeRunner is a Runner on a fake API (no manager), for the Lease logic.
func fakeRunner(t *testing.T, o Options, funcs interceptor.Funcs, objs ...client.Object) *Runner {
	t.Helper()
	s, err := fleet.Scheme()
	require.NoError(t, err)
	c := interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.Run{}).Build(), funcs)
	o.WorkDir = t.TempDir()
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	r, err := New(cluster.Config, o)
	require.NoError(t, err)
	r.client, r.direct, r.api = c, c, c
	return r
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

// TestTakeOver_IgnoresTheLeasesOwnDuration: a Lease whose holder (or
// anyone who can write Leases) set leaseDurationSeconds to 1 is still
// waited on for this runner's own LeaseDuration before a take-over.
func TestTakeOver_IgnoresTheLeasesOwnDuration(t *testing.T) {
	t.Parallel()
	run, lease := heldRun("fence-unit", "short-lease", "other-runner")
	r := fakeRunner(t, Options{Identity: "me", LeaseDuration: 4 * time.Second}, interceptor.Funcs{}, run, lease)
	ctx := context.Background()
	res, err := r.checkLease(ctx, run)
	require.NoError(t, err)
	assert.Equal(t, 4*time.Second, res.RequeueAfter, "the first sight waits the configured LeaseDuration, not the Lease's 1s")
	time.Sleep(1500 * time.Millisecond) // past the Lease's own 1s: the duration under test
	res, err = r.checkLease(ctx, run)
	require.NoError(t, err)
	assert.Greater(t, res.RequeueAfter, 2*time.Second, "not taken over after the Lease's own 1s")
	var l coordinationv1.Lease
	require.NoError(t, r.direct.Get(ctx, client.ObjectKeyFromObject(lease), &l))
	assert.Equal(t, "other-runner", ptr.Deref(l.Spec.HolderIdentity, ""), "the Lease is still the other runner's")
}

// TestRenewDeadline_InvalidIsRefusedNamingIt: a RenewDeadline not shorter
// than LeaseDuration (or under a quarter of it) is refused, naming it.
func TestRenewDeadline_InvalidIsRefusedNamingIt(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{15 * time.Second, 20 * time.Second, time.Second} {
		_, err := New(cluster.Config, Options{LeaseDuration: 15 * time.Second, RenewDeadline: d, WorkDir: t.TempDir()})
		require.Error(t, err, "%s", d)
		assert.Contains(t, err.Error(), "Options.RenewDeadline "+d.String())
		assert.Contains(t, err.Error(), "use e.g. 10s")
	}
	r, err := New(cluster.Config, Options{LeaseDuration: 15 * time.Second, WorkDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, r.o.RenewDeadline, "default: 2/3 of LeaseDuration")
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
	r := fakeRunner(t, Options{Identity: "me", LeaseDuration: 3 * time.Second, RenewDeadline: time.Second}, funcs, run, lease)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	start := time.Now()
	h, err := r.beat(run, lease, start, cancel, r.log)
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
	assert.ErrorIs(t, cause, errLeaseLost)
	_, done, err = fence.Check(context.Background(), h.Fence(), "write", "k")
	done()
	assert.ErrorIs(t, err, fence.ErrFenced, "the engine's writes are refused")
	_, statErr := os.Stat(h.Fence())
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}

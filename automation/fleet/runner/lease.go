package runner

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/runner/internal/lease"
)

// checkLease looks at the Lease of a Claimed or Running Run (that this
// process does not execute: a reconcile of the Run would be blocked then)
// and takes the Run over once the Lease has gone unrenewed for this
// runner's LeaseDuration (never the Lease's leaseDurationSeconds), or has
// not existed for LeaseDuration since the claim. LeaseDuration exceeds
// every runner's RenewDeadline, past which the holder's engine is killed
// and fenced off the backend.
func (r *Runner) checkLease(ctx context.Context, run *v1alpha1.Run) (ctrl.Result, error) {
	observed, err := r.leases.Get(ctx, run)
	if err != nil {
		return ctrl.Result{}, err
	}
	expired, wait := r.leases.Observe(run, observed)
	if !expired {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if observed == nil && run.Status.ClaimTime != nil {
		if left := r.o.LeaseDuration - time.Since(run.Status.ClaimTime.Time); left > 0 {
			return ctrl.Result{RequeueAfter: left}, nil
		}
	}
	return r.takeOver(ctx, run, observed)
}

// takeOver re-claims a Run whose Lease expired: first the Lease (updated
// with the version observed, or created when there was none; a Conflict
// means another runner took it), then the Run's status with the version
// read. The dead runner's host is then proven dead for the engine's lock
// recovery.
func (r *Runner) takeOver(ctx context.Context, cached *v1alpha1.Run, observed *coordinationv1.Lease) (ctrl.Result, error) {
	var run v1alpha1.Run
	if err := r.api.Get(ctx, key(cached), &run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if (run.Status.Phase != v1alpha1.RunClaimed && run.Status.Phase != v1alpha1.RunRunning) || run.Status.Attempts != cached.Status.Attempts {
		return ctrl.Result{}, nil // it moved on meanwhile; its next event says how
	}
	since := time.Now()
	held, taken, err := r.leases.TakeOver(ctx, &run, observed)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !taken {
		return ctrl.Result{RequeueAfter: r.o.LeaseDuration}, nil // renewed, or taken by another runner
	}
	prev := takeover{from: run.Status.Runner, host: run.Status.RunnerHost}
	now := metav1.Now()
	run.Status.Phase = v1alpha1.RunClaimed
	run.Status.Runner, run.Status.RunnerHost = r.o.Identity, r.o.Host
	run.Status.Attempts++
	run.Status.ClaimTime = &now
	run.Status.StartTime = nil
	run.Status.Lease = lease.Name(&run)
	if err := r.client.Status().Update(ctx, &run); err != nil {
		r.leases.Release(ctx, held, r.log)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("runner: taking over run %s: %w", key(&run), err)
	}
	r.leases.Forget(key(&run))
	log := r.log.With("run", key(&run).String(), "attempt", run.Status.Attempts)
	log.Warn("took over a run whose lease expired", "from", prev.from, "fromHost", prev.host)
	r.event(&run, corev1.EventTypeWarning, "TookOver", "TakeOver",
		fmt.Sprintf("runner %s on %s took the run over from %s on %s, whose lease expired (attempt %d)",
			r.o.Identity, r.o.Host, prev.from, prev.host, run.Status.Attempts))
	return r.execute(ctx, &run, held, since, prev, log), nil
}

package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// errLeaseLost cancels a Run's context when its runner no longer holds
// the Run's Lease: another runner took it over, the Lease (or the Run) was
// deleted, or it could not be renewed in time.
var errLeaseLost = errors.New("runner: lost the run's lease")

// leaseName is the name of a Run's Lease.
func leaseName(run *v1alpha1.Run) string { return "run-" + run.Name }

// leaseSeconds is LeaseDuration in whole seconds, rounded up.
func (r *Runner) leaseSeconds() int32 {
	return int32(math.Ceil(r.o.LeaseDuration.Seconds()))
}

// newLease is a Lease held by this runner for run, owned by the Run (so it
// goes with it).
func (r *Runner) newLease(run *v1alpha1.Run) *coordinationv1.Lease {
	now := metav1.NewMicroTime(time.Now())
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName(run), Namespace: run.Namespace,
			Labels: map[string]string{"slipway.dev/run": run.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Run",
				Name: run.Name, UID: run.UID}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(r.o.Identity), LeaseDurationSeconds: ptr.To(r.leaseSeconds()),
			AcquireTime: &now, RenewTime: &now},
	}
}

// holdBy makes l held by this runner from now on.
func (r *Runner) holdBy(l *coordinationv1.Lease) {
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity = ptr.To(r.o.Identity)
	l.Spec.LeaseDurationSeconds = ptr.To(r.leaseSeconds())
	l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
	l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
}

// acquire creates the Lease of a Run this runner has just claimed. A Lease
// left from an earlier Run of the same name (a Pending Run has no holder)
// is taken over.
func (r *Runner) acquire(ctx context.Context, run *v1alpha1.Run) (*coordinationv1.Lease, error) {
	l := r.newLease(run)
	err := r.direct.Create(ctx, l)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return l, err
	}
	var old coordinationv1.Lease
	if err := r.direct.Get(ctx, client.ObjectKeyFromObject(l), &old); err != nil {
		return nil, err
	}
	r.holdBy(&old)
	old.OwnerReferences = l.OwnerReferences
	return &old, r.direct.Update(ctx, &old)
}

// observation is what this runner last saw of a Run held by another
// runner, and when (on its own clock): a Lease whose version does not
// change for its duration has not been renewed.
type observation struct {
	uid      types.UID
	leaseRV  string
	attempts int32
	at       time.Time
}

// observe records the Run's Lease (nil: none) and reports whether it has
// been seen unchanged for d of local time, else how long to wait.
func (r *Runner) observe(run *v1alpha1.Run, lease *coordinationv1.Lease, d time.Duration) (expired bool, wait time.Duration) {
	o := observation{uid: run.UID, attempts: run.Status.Attempts, at: time.Now()}
	if lease != nil {
		o.leaseRV = lease.ResourceVersion
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.seen {
		// Runs that finished elsewhere are never reconciled again (finished
		// Runs are filtered out); their observations go after a while.
		if time.Since(s.at) > 10*r.o.LeaseDuration && k != key(run) {
			delete(r.seen, k)
		}
	}
	prev, ok := r.seen[key(run)]
	if !ok || prev.uid != o.uid || prev.leaseRV != o.leaseRV || prev.attempts != o.attempts {
		r.seen[key(run)] = o
		return false, d
	}
	if left := d - time.Since(prev.at); left > 0 {
		return false, left
	}
	return true, 0
}

// checkLease looks at the Lease of a Claimed or Running Run (that this
// process does not execute: a reconcile of the Run would be blocked then)
// and takes the Run over once the Lease has gone unrenewed for this
// runner's LeaseDuration (never the Lease's leaseDurationSeconds), or has
// not existed for LeaseDuration since the claim. LeaseDuration exceeds
// every runner's RenewDeadline, past which the holder's engine is killed
// and fenced off the backend.
func (r *Runner) checkLease(ctx context.Context, run *v1alpha1.Run) (ctrl.Result, error) {
	var lease *coordinationv1.Lease
	var l coordinationv1.Lease
	switch err := r.direct.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: leaseName(run)}, &l); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("runner: reading the lease of run %s: %w", key(run), err)
	default:
		lease = &l
	}
	// Only this runner's configuration says how long: the Lease's own
	// leaseDurationSeconds is written by whoever can write Leases.
	d := r.o.LeaseDuration
	expired, wait := r.observe(run, lease, d)
	if !expired {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if lease == nil && run.Status.ClaimTime != nil {
		if left := d - time.Since(run.Status.ClaimTime.Time); left > 0 {
			return ctrl.Result{RequeueAfter: left}, nil
		}
	}
	return r.takeOver(ctx, run, lease)
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
	var lease *coordinationv1.Lease
	since := time.Now()
	if observed == nil {
		lease = r.newLease(&run)
		if err := r.direct.Create(ctx, lease); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return ctrl.Result{RequeueAfter: r.o.LeaseDuration}, nil // another runner took it
			}
			return ctrl.Result{}, fmt.Errorf("runner: taking over the lease of run %s: %w", key(&run), err)
		}
	} else {
		lease = observed.DeepCopy()
		r.holdBy(lease)
		if err := r.direct.Update(ctx, lease); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return ctrl.Result{RequeueAfter: r.o.LeaseDuration}, nil // renewed, or taken by another runner
			}
			return ctrl.Result{}, fmt.Errorf("runner: taking over the lease of run %s: %w", key(&run), err)
		}
	}
	prev := takeover{from: run.Status.Runner, host: run.Status.RunnerHost}
	now := metav1.Now()
	run.Status.Phase = v1alpha1.RunClaimed
	run.Status.Runner, run.Status.RunnerHost = r.o.Identity, r.o.Host
	run.Status.Attempts++
	run.Status.ClaimTime = &now
	run.Status.StartTime = nil
	run.Status.Lease = leaseName(&run)
	if err := r.client.Status().Update(ctx, &run); err != nil {
		r.release(ctx, lease, r.log)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("runner: taking over run %s: %w", key(&run), err)
	}
	r.forget(key(&run))
	log := r.log.With("run", key(&run).String(), "attempt", run.Status.Attempts)
	log.Warn("took over a run whose lease expired", "from", prev.from, "fromHost", prev.host)
	r.event(&run, corev1.EventTypeWarning, "TookOver", "TakeOver",
		fmt.Sprintf("runner %s on %s took the run over from %s on %s, whose lease expired (attempt %d)",
			r.o.Identity, r.o.Host, prev.from, prev.host, run.Status.Attempts))
	return r.execute(ctx, &run, lease, since, prev, log), nil
}

// release deletes a Lease this runner holds (only the version it last
// wrote: a Lease another runner took meanwhile stays).
func (r *Runner) release(ctx context.Context, l *coordinationv1.Lease, log *slog.Logger) {
	rv := l.ResourceVersion
	err := r.direct.Delete(ctx, l, client.Preconditions{ResourceVersion: &rv})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Warn("deleting the run's lease failed; it expires", "lease", l.Name, "error", err)
	}
}

// heartbeat renews a held Lease every RenewDeadline/2 until stopped, and
// fences the Run's engine: after each successful renewal it moves the
// fence file's deadline (see package fence) to the start of that renewal
// plus RenewDeadline, and a watchdog timer, independent of the renewal
// calls, kills the engine's whole process tree at that deadline
// (automation.ErrKill). Another runner takes the Run over only after
// seeing the Lease unrenewed for LeaseDuration, which is longer. A Lease
// taken by another runner or deleted is lost at once: the fence file is
// removed (the engine then refuses every write) and the engine killed.
type heartbeat struct {
	r      *Runner
	log    *slog.Logger
	lost   context.CancelCauseFunc
	stopCh chan struct{}
	once   sync.Once
	done   chan struct{}
	mu     sync.Mutex
	lease  *coordinationv1.Lease

	fence, token string
	// fmu guards the fence file, the watchdog and ended (set when the
	// fence expired or the Lease was lost: the deadline never moves again).
	fmu      sync.Mutex
	watchdog *time.Timer
	ended    bool
	expired  chan struct{}
}

// fenceToken is the fencing token of a Run's attempt.
func fenceToken(run *v1alpha1.Run) string {
	return fmt.Sprintf("%s/%s#%d", run.Namespace, run.Name, run.Status.Attempts)
}

// fencePath is the fence file of a Run's attempt.
func (r *Runner) fencePath(run *v1alpha1.Run) string {
	return filepath.Join(r.o.WorkDir, "fences", fmt.Sprintf("%s_%s_%d", run.Namespace, run.Name, run.Status.Attempts))
}

// beat starts renewing lease, acquired by a write that started at since;
// lost is called with errLeaseLost when it is lost. It writes the fence
// file first (an error means the Run must not start).
func (r *Runner) beat(run *v1alpha1.Run, lease *coordinationv1.Lease, since time.Time, lost context.CancelCauseFunc, log *slog.Logger) (*heartbeat, error) {
	h := &heartbeat{r: r, log: log, lost: lost, lease: lease, stopCh: make(chan struct{}), done: make(chan struct{}),
		fence: r.fencePath(run), token: fenceToken(run), expired: make(chan struct{})}
	deadline := since.Add(r.o.RenewDeadline)
	if !time.Now().Before(deadline) {
		return nil, fmt.Errorf("%w: acquiring it took longer than the renew deadline %s", errLeaseLost, r.o.RenewDeadline)
	}
	if err := os.MkdirAll(filepath.Dir(h.fence), 0o700); err != nil {
		return nil, fmt.Errorf("runner: fence directory: %w", err)
	}
	if err := fence.Write(h.fence, deadline, h.token); err != nil {
		return nil, err
	}
	h.watchdog = time.AfterFunc(time.Until(deadline), h.expire)
	go h.loop()
	return h, nil
}

// Fence returns the path of the fence file the Run's engine checks.
func (h *heartbeat) Fence() string { return h.fence }

// expire is the watchdog: the deadline passed without a renewal.
func (h *heartbeat) expire() {
	h.fmu.Lock()
	if h.ended {
		h.fmu.Unlock()
		return
	}
	h.ended = true
	close(h.expired)
	h.removeFence()
	h.fmu.Unlock()
	h.log.Error("the run's lease was not renewed within the renew deadline; killing the engine", "renewDeadline", h.r.o.RenewDeadline)
	h.lost(fmt.Errorf("%w: not renewed within the renew deadline %s: %w", errLeaseLost, h.r.o.RenewDeadline, automation.ErrKill))
}

// lose ends the fence at once: the Lease is someone else's or gone.
func (h *heartbeat) lose(err error) {
	h.fmu.Lock()
	if h.ended {
		h.fmu.Unlock()
		return
	}
	h.ended = true
	h.watchdog.Stop()
	h.removeFence()
	h.fmu.Unlock()
	h.log.Warn("lost the run's lease; killing the engine", "error", err)
	h.lost(fmt.Errorf("%w: %w", err, automation.ErrKill))
}

// extend moves the fence's deadline after a renewal that started at start.
func (h *heartbeat) extend(start time.Time) error {
	h.fmu.Lock()
	defer h.fmu.Unlock()
	if h.ended {
		return errLeaseLost
	}
	deadline := start.Add(h.r.o.RenewDeadline)
	if err := fence.Write(h.fence, deadline, h.token); err != nil {
		return err
	}
	h.watchdog.Reset(time.Until(deadline))
	return nil
}

// deadline is the fence's current deadline.
func (h *heartbeat) deadline() time.Time {
	d, _, err := fence.Read(h.fence)
	if err != nil {
		return time.Now()
	}
	return d
}

// removeFence removes the fence file (fmu held): the engine refuses
// every write from now on.
func (h *heartbeat) removeFence() {
	if err := os.Remove(h.fence); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.log.Error("removing the fence file failed; its deadline still holds", "path", h.fence, "error", err)
	}
}

// stop ends the renewals and the watchdog (once), removes the fence file
// and returns the Lease as last written.
func (h *heartbeat) stop() *coordinationv1.Lease {
	h.once.Do(func() { close(h.stopCh) })
	<-h.done
	h.fmu.Lock()
	h.ended = true
	h.watchdog.Stop()
	h.removeFence()
	h.fmu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease
}

func (h *heartbeat) loop() {
	defer close(h.done)
	period, retry := h.r.o.RenewDeadline/2, h.r.o.RenewDeadline/10
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case <-h.stopCh:
			return
		case <-h.expired:
			return
		case <-t.C:
		}
		start := time.Now()
		// A renewal never outlasts the fence: past it the watchdog acts.
		ctx, cancel := context.WithDeadline(context.Background(), h.deadline())
		err := h.renew(ctx)
		cancel()
		if err == nil {
			err = h.extend(start)
		}
		switch {
		case err == nil:
			t.Reset(period)
		case errors.Is(err, errLeaseLost):
			h.lose(err)
			return
		default:
			h.log.Warn("renewing the run's lease failed; retrying until the renew deadline", "error", err)
			t.Reset(retry)
		}
	}
}

// renew writes a new renewTime on the version last written. A Conflict
// is checked against the Lease as it is now: still held by this runner
// (written by something else) means renew again.
func (h *heartbeat) renew(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range 3 {
		l := h.lease.DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		err := h.r.direct.Update(ctx, l)
		switch {
		case err == nil:
			h.lease = l
			return nil
		case apierrors.IsNotFound(err):
			return fmt.Errorf("%w: lease %s was deleted", errLeaseLost, l.Name)
		case !apierrors.IsConflict(err):
			return err
		}
		var cur coordinationv1.Lease
		if err := h.r.direct.Get(ctx, client.ObjectKeyFromObject(l), &cur); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: lease %s was deleted", errLeaseLost, l.Name)
			}
			return err
		}
		if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != h.r.o.Identity {
			holder := "nobody"
			if cur.Spec.HolderIdentity != nil {
				holder = *cur.Spec.HolderIdentity
			}
			return fmt.Errorf("%w: %s holds lease %s now", errLeaseLost, holder, l.Name)
		}
		h.lease = &cur
	}
	return errors.New("runner: the lease kept changing while being renewed")
}

package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// Heartbeat renews a held Lease every RenewDeadline/2 until stopped, and
// fences the Run's engine: after each successful renewal it moves the
// fence file's deadline (see package fence) to the start of that renewal
// plus RenewDeadline, and a watchdog timer, independent of the renewal
// calls, kills the engine's whole process tree at that deadline
// (automation.ErrKill). Another runner takes the Run over only after
// seeing the Lease unrenewed for LeaseDuration, which is longer. A Lease
// taken by another runner or deleted is lost at once: the fence file is
// removed (the engine then refuses every write) and the engine killed.
type Heartbeat struct {
	k      *Keeper
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
func (k *Keeper) fencePath(run *v1alpha1.Run) string {
	return filepath.Join(k.FenceDir, fmt.Sprintf("%s_%s_%d", run.Namespace, run.Name, run.Status.Attempts))
}

// Beat starts renewing lease, acquired by a write that started at since;
// lost is called with ErrLost when it is lost. It writes the fence
// file first (an error means the Run must not start).
func (k *Keeper) Beat(run *v1alpha1.Run, lease *coordinationv1.Lease, since time.Time, lost context.CancelCauseFunc, log *slog.Logger) (*Heartbeat, error) {
	h := &Heartbeat{k: k, log: log, lost: lost, lease: lease, stopCh: make(chan struct{}), done: make(chan struct{}),
		fence: k.fencePath(run), token: fenceToken(run), expired: make(chan struct{})}
	deadline := since.Add(k.RenewDeadline)
	if !time.Now().Before(deadline) {
		return nil, fmt.Errorf("%w: acquiring it took longer than the renew deadline %s", ErrLost, k.RenewDeadline)
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
func (h *Heartbeat) Fence() string { return h.fence }

// expire is the watchdog: the deadline passed without a renewal.
func (h *Heartbeat) expire() {
	h.fmu.Lock()
	if h.ended {
		h.fmu.Unlock()
		return
	}
	h.ended = true
	close(h.expired)
	h.removeFence()
	h.fmu.Unlock()
	h.log.Error("the run's lease was not renewed within the renew deadline; killing the engine", "renewDeadline", h.k.RenewDeadline)
	h.lost(fmt.Errorf("%w: not renewed within the renew deadline %s: %w", ErrLost, h.k.RenewDeadline, automation.ErrKill))
}

// lose ends the fence at once: the Lease is someone else's or gone.
func (h *Heartbeat) lose(err error) {
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
func (h *Heartbeat) extend(start time.Time) error {
	h.fmu.Lock()
	defer h.fmu.Unlock()
	if h.ended {
		return ErrLost
	}
	deadline := start.Add(h.k.RenewDeadline)
	if err := fence.Write(h.fence, deadline, h.token); err != nil {
		return err
	}
	h.watchdog.Reset(time.Until(deadline))
	return nil
}

// deadline is the fence's current deadline.
func (h *Heartbeat) deadline() time.Time {
	d, _, err := fence.Read(h.fence)
	if err != nil {
		return time.Now()
	}
	return d
}

// removeFence removes the fence file (fmu held): the engine refuses
// every write from now on.
func (h *Heartbeat) removeFence() {
	if err := os.Remove(h.fence); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.log.Error("removing the fence file failed; its deadline still holds", "path", h.fence, "error", err)
	}
}

// Stop ends the renewals and the watchdog (once), removes the fence file
// and returns the Lease as last written.
func (h *Heartbeat) Stop() *coordinationv1.Lease {
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

func (h *Heartbeat) loop() {
	defer close(h.done)
	period, retry := h.k.RenewDeadline/2, h.k.RenewDeadline/10
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
		case errors.Is(err, ErrLost):
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
func (h *Heartbeat) renew(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range 3 {
		l := h.lease.DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		err := h.k.Client.Update(ctx, l)
		switch {
		case err == nil:
			h.lease = l
			return nil
		case apierrors.IsNotFound(err):
			return fmt.Errorf("%w: lease %s was deleted", ErrLost, l.Name)
		case !apierrors.IsConflict(err):
			return err
		}
		var cur coordinationv1.Lease
		if err := h.k.Client.Get(ctx, client.ObjectKeyFromObject(l), &cur); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: lease %s was deleted", ErrLost, l.Name)
			}
			return err
		}
		if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != h.k.Identity {
			holder := "nobody"
			if cur.Spec.HolderIdentity != nil {
				holder = *cur.Spec.HolderIdentity
			}
			return fmt.Errorf("%w: %s holds lease %s now", ErrLost, holder, l.Name)
		}
		h.lease = &cur
	}
	return errors.New("runner: the lease kept changing while being renewed")
}

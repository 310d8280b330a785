// Package lease is a runner's side of the Leases that fence the Runs it
// executes: a Run's Lease is created when the Run is claimed, renewed by
// a heartbeat that also moves the deadline of the engine's fence file
// (see package fence) and kills the engine when renewals stop, taken over
// by another runner once it has gone unrenewed for that runner's
// LeaseDuration, and deleted when the Run is done. Package runner decides
// when; this package does the Lease and fence writes.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// ErrLost cancels a Run's context when its runner no longer holds the
// Run's Lease: another runner took it over, the Lease (or the Run) was
// deleted, or it could not be renewed in time.
var ErrLost = errors.New("runner: lost the run's lease")

// Name is the name of a Run's Lease.
func Name(run *v1alpha1.Run) string { return "run-" + run.Name }

// Keeper holds, observes and takes over the Leases of Runs for one
// runner. Its exported fields are set before first use and not changed
// afterwards (Client may be set later, before any Lease is written).
type Keeper struct {
	// Client reads and writes Leases without a cache.
	Client client.Client
	// Identity is the runner's identity, the holder of its Leases.
	Identity string
	// Duration is how long a Lease must go unrenewed before another
	// runner takes it over (the runner's LeaseDuration).
	Duration time.Duration
	// RenewDeadline is how long a held Lease may go unrenewed before the
	// engine is killed and fenced off; shorter than Duration.
	RenewDeadline time.Duration
	// FenceDir holds the fence files of the Runs' attempts.
	FenceDir string

	// mu guards seen: what this runner observed of other runners' Leases
	// (see Observe).
	mu   sync.Mutex
	seen map[types.NamespacedName]observation
}

// seconds is Duration in whole seconds, rounded up.
func (k *Keeper) seconds() int32 {
	return int32(math.Ceil(k.Duration.Seconds()))
}

// New is a Lease held by this runner for run, owned by the Run (so it
// goes with it).
func (k *Keeper) New(run *v1alpha1.Run) *coordinationv1.Lease {
	now := metav1.NewMicroTime(time.Now())
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: Name(run), Namespace: run.Namespace,
			Labels: map[string]string{"slipway.dev/run": run.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Run",
				Name: run.Name, UID: run.UID}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(k.Identity), LeaseDurationSeconds: ptr.To(k.seconds()),
			AcquireTime: &now, RenewTime: &now},
	}
}

// holdBy makes l held by this runner from now on.
func (k *Keeper) holdBy(l *coordinationv1.Lease) {
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity = ptr.To(k.Identity)
	l.Spec.LeaseDurationSeconds = ptr.To(k.seconds())
	l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
	l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
}

// Acquire creates the Lease of a Run this runner has just claimed. A
// Lease left from an earlier Run of the same name (a Pending Run has no
// holder) is taken over.
func (k *Keeper) Acquire(ctx context.Context, run *v1alpha1.Run) (*coordinationv1.Lease, error) {
	l := k.New(run)
	err := k.Client.Create(ctx, l)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return l, err
	}
	var old coordinationv1.Lease
	if err := k.Client.Get(ctx, client.ObjectKeyFromObject(l), &old); err != nil {
		return nil, err
	}
	k.holdBy(&old)
	old.OwnerReferences = l.OwnerReferences
	return &old, k.Client.Update(ctx, &old)
}

// Get reads the Lease of a Run; nil when there is none.
func (k *Keeper) Get(ctx context.Context, run *v1alpha1.Run) (*coordinationv1.Lease, error) {
	var l coordinationv1.Lease
	switch err := k.Client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: Name(run)}, &l); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("runner: reading the lease of run %s/%s: %w", run.Namespace, run.Name, err)
	}
	return &l, nil
}

// TakeOver makes this runner the holder of the expired Lease observed
// (the version observed is updated; nil: a Lease is created). taken is
// false when another runner renewed or took it meanwhile.
func (k *Keeper) TakeOver(ctx context.Context, run *v1alpha1.Run, observed *coordinationv1.Lease) (l *coordinationv1.Lease, taken bool, err error) {
	if observed == nil {
		l = k.New(run)
		err = k.Client.Create(ctx, l)
	} else {
		l = observed.DeepCopy()
		k.holdBy(l)
		err = k.Client.Update(ctx, l)
	}
	switch {
	case err == nil:
		return l, true, nil
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("runner: taking over the lease of run %s/%s: %w", run.Namespace, run.Name, err)
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

// Observe records the Run's Lease (nil: none) and reports whether it has
// been seen unchanged for Duration of local time, else how long to wait.
// Only this runner's Duration counts: the Lease's own
// leaseDurationSeconds is written by whoever can write Leases.
func (k *Keeper) Observe(run *v1alpha1.Run, lease *coordinationv1.Lease) (expired bool, wait time.Duration) {
	d := k.Duration
	o := observation{uid: run.UID, attempts: run.Status.Attempts, at: time.Now()}
	if lease != nil {
		o.leaseRV = lease.ResourceVersion
	}
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen == nil {
		k.seen = map[types.NamespacedName]observation{}
	}
	for n, s := range k.seen {
		// Runs that finished elsewhere are never reconciled again (finished
		// Runs are filtered out); their observations go after a while.
		if time.Since(s.at) > 10*d && n != key {
			delete(k.seen, n)
		}
	}
	prev, ok := k.seen[key]
	if !ok || prev.uid != o.uid || prev.leaseRV != o.leaseRV || prev.attempts != o.attempts {
		k.seen[key] = o
		return false, d
	}
	if left := d - time.Since(prev.at); left > 0 {
		return false, left
	}
	return true, 0
}

// Forget drops what the runner observed of a Run's Lease.
func (k *Keeper) Forget(n types.NamespacedName) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.seen, n)
}

// Release deletes a Lease this runner holds (only the version it last
// wrote: a Lease another runner took meanwhile stays).
func (k *Keeper) Release(ctx context.Context, l *coordinationv1.Lease, log *slog.Logger) {
	rv := l.ResourceVersion
	err := k.Client.Delete(ctx, l, client.Preconditions{ResourceVersion: &rv})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Warn("deleting the run's lease failed; it expires", "lease", l.Name, "error", err)
	}
}

package operator

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// RunReconciler deletes finished Runs spec.ttlSecondsAfterFinished (else
// Options.RunTTL) after they finished; never a Run in flight, nor one its
// Environment has not yet folded into its status. Set Options and call
// SetupWithManager.
type RunReconciler struct {
	// Options configure it; zero fields take the defaults.
	Options Options

	client client.Client
	reader client.Reader
}

// SetupWithManager registers the reconciler with mgr.
func (r *RunReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options = r.Options.withDefaults()
	r.client, r.reader = mgr.GetClient(), mgr.GetAPIReader()
	return ctrl.NewControllerManagedBy(mgr).Named("run-ttl").For(&v1alpha1.Run{}).Complete(r)
}

// foldWait is how long a Run whose TTL passed waits for its Environment to
// fold it before the next look.
const foldWait = 10 * time.Second

// Reconcile deletes the Run when its TTL passed.
func (r *RunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.Options.refused("Run", req) {
		return ctrl.Result{}, nil
	}
	run := &v1alpha1.Run{}
	if err := r.client.Get(ctx, req.NamespacedName, run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !run.Status.Phase.Finished() || !run.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	ttl := r.Options.RunTTL
	if t := run.Spec.TTLSecondsAfterFinished; t != nil {
		ttl = time.Duration(*t) * time.Second
	}
	finished := run.CreationTimestamp.Time
	if c := run.Status.CompletionTime; c != nil {
		finished = c.Time
	}
	now := r.Options.now()
	if expires := finished.Add(ttl); now.Before(expires) {
		return ctrl.Result{RequeueAfter: expires.Sub(now)}, nil
	}
	// The Environment must have folded the Run first: deleting its active
	// Run (or its reserved drift check) would make it create the Run again. Read it uncached.
	env := &v1alpha1.Environment{}
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: run.Spec.Environment}, env)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if err == nil && (env.Status.ActiveRun == run.Name || env.Status.NextDriftRun == run.Name) {
		return ctrl.Result{RequeueAfter: foldWait}, nil
	}
	uid, rv := run.UID, run.ResourceVersion
	err = r.client.Delete(ctx, run, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictDelay}, nil
	}
	if err = client.IgnoreNotFound(err); err == nil {
		r.Options.Logger.Info("deleted finished run after its TTL", "run", req.String(), "ttl", ttl)
	}
	return ctrl.Result{}, err
}

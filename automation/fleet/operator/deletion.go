package operator

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/stacks"
)

// orphan removes the finalizer of a deleted Environment whose deletion
// policy is orphan, without a destroy Run: the stack and its resources
// stay, and an Event says where.
func (p *pass) orphan(ctx context.Context, orig *v1alpha1.EnvironmentStatus, kind stacks.Kind) error {
	s := &p.env.Status
	why := "spec.deletionPolicy is orphan"
	if p.env.Spec.DeletionPolicy == "" {
		why = "the default deletion policy of kind prod is orphan"
		if kind == "" {
			why = "the kind cannot be resolved (deletion fails closed: orphan)"
		}
	}
	stack := orNone(s.Stack)
	msg := fmt.Sprintf("%s: stack %s is kept in backend %s with its resources; destroy it with slipway destroy, or set spec.deletionPolicy: destroy before deleting",
		why, stack, mask.URL(p.env.Spec.Backend.URL))
	p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonOrphaned, msg)
	p.cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonOrphaned, "orphaned; removing the finalizer")
	if err := p.letGo(ctx, orig); err != nil {
		return err
	}
	p.event(corev1.EventTypeNormal, EventOrphaned, nil, "%s", msg)
	p.flush()
	return nil
}

// terminating handles a destroy Run that cannot be created because the
// Environment's namespace is being deleted (Kubernetes refuses new objects
// there). With Options.Destroy the operator runs the destroy itself (its
// Secrets are kept by their finalizers, see secrets.Guard.Protect) and
// folds the outcome as it folds a Run's: success lets the next pass
// release the Environment, failure backs off. Without it, the Environment
// says why and how to finish (Stalled, reason NamespaceTerminating).
func (p *pass) terminating(ctx context.Context, run *v1alpha1.Run) (ctrl.Result, error) {
	env, s := p.env, &p.env.Status
	orig := s.DeepCopy()
	s.ActiveRun = ""
	if destroy := p.r.Options.Destroy; destroy != nil {
		p.r.Options.Logger.Info("the namespace is being deleted: the operator destroys the stack itself", "environment", env.Namespace+"/"+env.Name,
			"stack", s.Stack, "run", run.Name)
		id := string(env.UID) + "/" + run.Name
		var st v1alpha1.RunStatus
		if kept, ok := p.r.detached.Load(id); ok {
			st = kept.(v1alpha1.RunStatus) // ran; its status write failed
		} else {
			st = destroy(ctx, p.r.reader, run)
			if ctx.Err() != nil {
				return ctrl.Result{}, ctx.Err() // shutting down: the next leader does it again
			}
			p.r.detached.Store(id, st)
		}
		done := run.DeepCopy()
		done.Status = st
		s.ActiveRun = run.Name
		p.fold(done)
		p.reconciling(true)
		return ctrl.Result{RequeueAfter: time.Millisecond}, p.write(ctx, orig)
	}
	msg := fmt.Sprintf("namespace %s is being deleted and Kubernetes refuses new objects in it, so no destroy Run can start for stack %s (backend %s). "+
		"To finish: destroy the stack outside the cluster (slipway destroy) and set spec.deletionPolicy: orphan on this Environment, "+
		"or set spec.deletionPolicy: orphan to keep it. Delete Environments before their namespace to have them destroyed.",
		env.Namespace, orNone(s.Stack), mask.URL(env.Spec.Backend.URL))
	p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNamespaceTerminating, msg)
	p.stall(ReasonNamespaceTerminating, msg)
	p.reconciling(true)
	return ctrl.Result{}, p.write(ctx, orig)
}

// orNone is s, or "(none)" when empty.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

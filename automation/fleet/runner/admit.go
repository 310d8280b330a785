package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// admit checks, before a Pending Run is claimed, that its Environment
// asked for it (fleet.Admit, against the Environment read from the API
// server, never a cache). A refused Run is never executed: it is marked
// Failed with reason Rejected and a Warning Event naming why, so no runner
// looks at it again and its Environment (if any) moves on. A Run gets to
// Claimed or Running only through a claim (runs/status is the runners'
// permission alone), so a Run taken over was admitted at its claim.
// It returns false when the Run must not be claimed; an error only when
// the Environment could not be read (the Run is tried again).
func (r *Runner) admit(ctx context.Context, run *v1alpha1.Run) (bool, error) {
	var env *v1alpha1.Environment
	if owner := metav1.GetControllerOf(run); owner != nil && owner.Kind == "Environment" {
		var e v1alpha1.Environment
		err := r.api.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: owner.Name}, &e)
		switch {
		case err == nil:
			env = &e
		case !apierrors.IsNotFound(err):
			return false, fmt.Errorf("runner: reading the Environment of run %s: %w", key(run), err)
		}
	}
	err := fleet.Admit(run, env)
	if err == nil {
		return true, nil
	}
	var rej *fleet.RejectedError
	if !errors.As(err, &rej) {
		return false, err
	}
	r.log.Warn("rejected a run: it is not executed", "run", key(run).String(), "why", rej.Reason)
	cp := run.DeepCopy()
	now := metav1.Now()
	cp.Status.Phase, cp.Status.Reason, cp.Status.Message = v1alpha1.RunFailed, v1alpha1.ReasonRejected, clipMessage("not executed: "+rej.Reason)
	cp.Status.CompletionTime = &now
	if err := r.client.Status().Update(ctx, cp); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return false, nil // it changed meanwhile: the next event looks again
		}
		return false, fmt.Errorf("runner: marking run %s rejected: %w", key(run), err)
	}
	r.event(cp, corev1.EventTypeWarning, v1alpha1.ReasonRejected, "Admit", "not executed: "+rej.Reason)
	return false, nil
}

// clipMessage bounds a status message.
func clipMessage(s string) string {
	if len(s) > maxMessageBytes {
		return strings.ToValidUTF8(s[:maxMessageBytes], "") + "..."
	}
	return s
}

package runner

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// EventDefinitionUnknown is the Event a runner records on a Run whose definition
// its binary does not have: it leaves the Run for a runner that has it.
const EventDefinitionUnknown = "DefinitionUnknown"

// unknownDefinitionRecheck is how often a runner looks again at a Run whose
// definition it does not have (in case no other runner takes it: the Event is
// repeated, so the Run's Events say why it waits).
const unknownDefinitionRecheck = time.Minute

// unknownDefinition reports whether the Run names a definition this runner's
// binary does not have. Such a Run is transient, not invalid: operators and
// runners are rolled at different times, so the runner neither claims it
// nor takes it over (it would fail it as InvalidSpec) but leaves it for a
// runner that has the definition, with an Event, and looks again later. A
// destroy needs no definition (the state says what to delete) and is never
// skipped; a finished Run is left alone anyway.
func (r *Runner) unknownDefinition(run *v1alpha1.Run) (ctrl.Result, bool) {
	if run.Spec.Operation == v1alpha1.OpDestroy || run.Status.Phase.Finished() {
		return ctrl.Result{}, false
	}
	if _, err := r.o.Registry.Definition(run.Spec.Definition); err == nil {
		return ctrl.Result{}, false
	}
	var names []string
	for _, b := range r.o.Registry.Definitions {
		names = append(names, b.Info().Name)
	}
	msg := fmt.Sprintf("runner %s has no definition %q (its binary has: %s); leaving the run for a runner that has it (runners being rolled out?)",
		r.o.Identity, run.Spec.Definition, strings.Join(names, ", "))
	r.log.Info("leaving a run whose definition this binary does not have", "run", key(run).String(), "definition", run.Spec.Definition)
	r.event(run, corev1.EventTypeNormal, EventDefinitionUnknown, "Skip", msg)
	return ctrl.Result{RequeueAfter: unknownDefinitionRecheck}, true
}

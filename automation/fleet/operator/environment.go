package operator

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/operator/internal/jitter"
	"github.com/slipwayhq/slipway/automation/fleet/operator/internal/secrets"
	"github.com/slipwayhq/slipway/stacks"
)

// LabelEnvironment is the label every Run carries with its Environment's name.
const LabelEnvironment = "slipway.dev/environment"

// conflictDelay is the wait before a pass that lost an optimistic
// concurrency race runs again (the cache is catching up).
const conflictDelay = 250 * time.Millisecond

// EnvironmentReconciler reconciles Environments: it validates them,
// resolves their inputs (Git source), creates at most one Run at a time
// (up, drift or, on deletion, destroy), folds finished Runs into the
// status, backs off after failures, stalls when retrying cannot help,
// deletes expired Environments and removes the finalizer once the stack is
// destroyed. Set Options and call SetupWithManager.
type EnvironmentReconciler struct {
	// Options configure it; zero fields take the defaults.
	Options Options

	client   client.Client
	reader   client.Reader
	scheme   *runtime.Scheme
	recorder recorder.EventRecorder
	sources  sources
	// detached holds the outcome of each detached destroy (see
	// terminating), keyed by Environment UID and Run name, until the
	// Environment is let go: a pass that reads a stale Environment from the
	// cache, or whose status write failed, folds that outcome again rather
	// than running the destroy again before its back-off.
	detached sync.Map
}

// SetupWithManager registers the reconciler with mgr: it watches
// Environments (new generations, annotation changes such as the retry
// annotation, deletion; not its own status writes) and the Runs they own
// (created, finished, deleted).
func (r *EnvironmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options = r.Options.withDefaults()
	r.client, r.reader, r.scheme = mgr.GetClient(), mgr.GetAPIReader(), mgr.GetScheme()
	r.recorder = mgr.GetEventRecorder(Name)
	// The pass that adds the finalizer goes on with its work, so adding it
	// wakes no second pass; its removal (or a deletion) does.
	changed := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero() ||
			!controllerutil.ContainsFinalizer(e.ObjectNew, v1alpha1.Finalizer)
	}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("environment").
		For(&v1alpha1.Environment{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, changed))).
		// A Run is created by the pass that names it, and its claim and
		// start change nothing here: only its end (or deletion) wakes a
		// pass. (A restarted operator reconciles every Environment anyway.)
		Owns(&v1alpha1.Run{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false }, UpdateFunc: runEnded})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// runEnded reports whether a Run's update finished it or began its
// deletion.
func runEnded(e event.UpdateEvent) bool {
	o, ok := e.ObjectOld.(*v1alpha1.Run)
	n, ok2 := e.ObjectNew.(*v1alpha1.Run)
	return !ok || !ok2 || o.Status.Phase.Finished() != n.Status.Phase.Finished() ||
		o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
}

// Reconcile runs one level-based pass over an Environment.
func (r *EnvironmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.Options.refused("Environment", req) {
		return ctrl.Result{}, nil
	}
	env := &v1alpha1.Environment{}
	if err := r.client.Get(ctx, req.NamespacedName, env); err != nil {
		if apierrors.IsNotFound(err) {
			r.sources.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	seen := env.DeepCopy()
	p := &pass{r: r, env: env, now: r.Options.now()}
	res, err := p.run(ctx)
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		r.Options.Logger.Debug("environment changed meanwhile; requeueing", "environment", req.String(), "error", err)
		return ctrl.Result{RequeueAfter: conflictDelay}, nil
	}
	if err == nil && r.Options.onReconciled != nil {
		r.Options.onReconciled(seen)
	}
	return res, err
}

// secrets protects and checks the Secrets the Environments name.
func (r *EnvironmentReconciler) secrets() secrets.Guard {
	return secrets.Guard{Reader: r.reader, Client: r.client, Logger: r.Options.Logger, AllowRunnerCredentials: r.Options.AllowRunnerCredentials}
}

// pass is one reconcile of one Environment: the status is changed in
// memory, written once, and the Events are sent after the write.
type pass struct {
	r      *EnvironmentReconciler
	env    *v1alpha1.Environment
	now    time.Time
	events []note
	wake   []time.Time
}

// note is an Event to send once the status is written.
type note struct {
	typ, reason, msg string
	related          runtime.Object
}

func (p *pass) event(typ, reason string, related runtime.Object, format string, args ...any) {
	p.events = append(p.events, note{typ: typ, reason: reason, related: related, msg: fmt.Sprintf(format, args...)})
}

func (p *pass) flush() {
	for _, e := range p.events {
		p.r.recorder.Eventf(p.env, e.related, e.typ, e.reason, "Reconcile", "%s", clip(e.msg, 1000))
		p.r.Options.Logger.Info(e.msg, "environment", p.env.Namespace+"/"+p.env.Name, "reason", e.reason)
	}
	p.events = nil
}

// cond sets a condition and reports whether its status, reason or
// message changed.
func (p *pass) cond(typ string, status metav1.ConditionStatus, reason, msg string) bool {
	msg = clip(msg, 4000)
	old := meta.FindStatusCondition(p.env.Status.Conditions, typ)
	changed := old == nil || old.Status != status || old.Reason != reason || old.Message != msg
	meta.SetStatusCondition(&p.env.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason,
		Message: msg, ObservedGeneration: p.env.Generation, LastTransitionTime: metav1.NewTime(p.now)})
	return changed
}

func (p *pass) is(typ string) bool { return meta.IsStatusConditionTrue(p.env.Status.Conditions, typ) }

// unstall clears Stalled (and the back-off) for a new try.
func (p *pass) unstall(reason, msg string) {
	s := &p.env.Status
	s.Failures, s.NextAttempt = 0, nil
	if p.is(v1alpha1.ConditionStalled) {
		p.cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, reason, msg)
	}
}

func (p *pass) stall(reason, msg string) {
	if p.cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, msg) {
		p.event(corev1.EventTypeWarning, EventStalled, nil, "%s", msg)
	}
}

func (p *pass) at(t time.Time) {
	if t.After(p.now) {
		p.wake = append(p.wake, t)
	}
}

func (p *pass) result() ctrl.Result {
	if len(p.wake) == 0 {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: slices.MinFunc(p.wake, time.Time.Compare).Sub(p.now)}
}

// run is the pass: bookkeeping, the active Run, then what to do next.
func (p *pass) run(ctx context.Context) (ctrl.Result, error) {
	env, s := p.env, &p.env.Status
	orig := s.DeepCopy()
	deleting := !env.DeletionTimestamp.IsZero()
	if deleting && !controllerutil.ContainsFinalizer(env, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if !deleting && controllerutil.AddFinalizer(env, v1alpha1.Finalizer) {
		if err := p.r.client.Update(ctx, env); err != nil {
			return ctrl.Result{}, err
		}
	}
	p.bookkeeping()

	// The Run in flight: wait for it, or fold it when it finished.
	missing := false
	if s.ActiveRun != "" {
		run, err := p.activeRun(ctx)
		if err != nil {
			return ctrl.Result{}, err
		}
		switch {
		case run == nil:
			missing = true
		case run.Status.Phase.Finished():
			p.fold(run)
		}
	}
	// The drift check created under its reserved name: wait for it, or
	// fold it when it finished.
	checking := false
	if s.ActiveRun == "" && s.NextDriftRun != "" {
		run, err := p.reservedRun(ctx)
		if err != nil {
			return ctrl.Result{}, err
		}
		switch {
		case run == nil:
		case run.Status.Phase.Finished():
			p.fold(run)
		default:
			checking = true
		}
	}

	if !deleting && s.ExpiresAt != nil && !p.now.Before(s.ExpiresAt.Time) {
		return ctrl.Result{}, p.expire(ctx, orig)
	}
	busy := (s.ActiveRun != "" && !missing) || checking
	var want *v1alpha1.Run
	switch {
	case deleting && busy:
	case deleting:
		destroyed := s.LastRun != nil && s.LastRun.Operation == v1alpha1.OpDestroy && s.LastRun.Phase == v1alpha1.RunSucceeded
		if destroyed || (s.RunCount == 0 && s.Stack == "") {
			return ctrl.Result{}, p.release(ctx, orig, destroyed)
		}
		if policy, kind := p.r.Options.Registry.DeletionPolicy(env.Name, env.Spec); policy == v1alpha1.DeletionOrphan {
			return ctrl.Result{}, p.orphan(ctx, orig, kind)
		}
		want = p.destroy()
	default:
		p.r.secrets().Protect(ctx, p.env)
		// Validation, the source poll and the revision are kept current
		// while a Run is in flight; the next Run waits for it.
		if want = p.desired(ctx); busy {
			want = nil
		}
	}
	if want == nil {
		if missing {
			s.ActiveRun = ""
		}
		if !busy && !deleting {
			p.reserve()
		}
		p.reconciling(deleting)
		return p.result(), p.write(ctx, orig)
	}
	switch {
	case want.Spec.Operation == v1alpha1.OpDrift && s.ActiveRun == "" && s.NextDriftRun != "":
		// The name was reserved when the last Run was folded: the status
		// need not change before the Run is created.
		want.Name = s.NextDriftRun
	case s.ActiveRun == "" && s.NextDriftRun != "":
		s.ActiveRun, s.NextDriftRun = s.NextDriftRun, ""
	case s.ActiveRun == "":
		s.RunCount++
		s.ActiveRun = fmt.Sprintf("%s-%d", env.Name, s.RunCount)
	}
	if want.Name == "" {
		want.Name = s.ActiveRun
	}
	p.reconciling(deleting)
	if err := p.write(ctx, orig); err != nil {
		return ctrl.Result{}, err
	}
	if err := p.create(ctx, want); err != nil {
		if deleting && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return p.terminating(ctx, want)
		}
		return ctrl.Result{}, err
	}
	return p.result(), nil
}

// bookkeeping applies a new generation, the retry annotation and the TTL.
func (p *pass) bookkeeping() {
	env, s := p.env, &p.env.Status
	if s.ObservedGeneration != env.Generation {
		if s.ObservedGeneration != 0 {
			p.unstall(ReasonSpecChanged, fmt.Sprintf("generation %d: the spec changed", env.Generation))
		}
		s.ObservedGeneration = env.Generation
	}
	if v := env.Annotations[v1alpha1.RetryAnnotation]; v != "" && v != s.RetryToken {
		s.RetryToken = v
		p.unstall(ReasonRetryRequested, fmt.Sprintf("%s=%s asked for a new try", v1alpha1.RetryAnnotation, v))
		p.event(corev1.EventTypeNormal, EventRetry, nil, "%s=%s: failures reset, trying again", v1alpha1.RetryAnnotation, v)
	}
	s.ExpiresAt = nil
	if env.Spec.TTL != nil {
		s.ExpiresAt = ptrTime(env.CreationTimestamp.Add(env.Spec.TTL.Duration))
		p.at(s.ExpiresAt.Time)
	}
	if meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady) == nil {
		p.cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing, "no up has finished yet")
	}
}

// activeRun returns status.activeRun's Run, or nil when it does not exist.
// A Run of that name owned by another Environment (an earlier one of the
// same name) is skipped: the next name is taken instead.
func (p *pass) activeRun(ctx context.Context) (*v1alpha1.Run, error) {
	s := &p.env.Status
	run, foreign, err := p.ownRun(ctx, s.ActiveRun)
	if foreign {
		s.RunCount++
		s.ActiveRun = fmt.Sprintf("%s-%d", p.env.Name, s.RunCount)
	}
	return run, err
}

// reservedRun returns status.nextDriftRun's Run, or nil when it was not
// created yet. A Run of that name owned by another Environment makes it
// reserve the next name.
func (p *pass) reservedRun(ctx context.Context) (*v1alpha1.Run, error) {
	run, foreign, err := p.ownRun(ctx, p.env.Status.NextDriftRun)
	if foreign {
		p.env.Status.NextDriftRun = ""
		p.reserve()
	}
	return run, err
}

// ownRun returns the Run named name when this Environment controls it;
// nil when there is none, or when another Environment's holds the name
// (foreign).
func (p *pass) ownRun(ctx context.Context, name string) (run *v1alpha1.Run, foreign bool, err error) {
	key := client.ObjectKey{Namespace: p.env.Namespace, Name: name}
	run = &v1alpha1.Run{}
	err = p.r.client.Get(ctx, key, run)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Run created moments ago.
		err = p.r.reader.Get(ctx, key, run)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case !metav1.IsControlledBy(run, p.env):
		return nil, true, nil
	}
	return run, false, nil
}

// reserve names the next drift check (status.nextDriftRun) when drift
// checks are on and none is reserved, so it is written with the status
// this pass writes anyway (the fold of the last Run) and the check's own
// Run needs no status write before it. With drift checks off, a
// reservation is dropped.
func (p *pass) reserve() {
	env, s := p.env, &p.env.Status
	if d := env.Spec.Drift; d == nil || d.Interval.Duration <= 0 {
		s.NextDriftRun = ""
		return
	}
	if s.NextDriftRun != "" || s.ActiveRun != "" || env.Spec.Suspend || !p.is(v1alpha1.ConditionReady) {
		return
	}
	s.RunCount++
	s.NextDriftRun = fmt.Sprintf("%s-%d", env.Name, s.RunCount)
}

// reconciling sets the Reconciling condition from the status.
func (p *pass) reconciling(deleting bool) {
	s := &p.env.Status
	switch {
	case s.ActiveRun != "":
		p.cond(v1alpha1.ConditionReconciling, metav1.ConditionTrue, ReasonRunning, "run "+s.ActiveRun+" is in flight")
	case p.is(v1alpha1.ConditionStalled):
		p.cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonStalled, "stalled; fix the spec or annotate "+v1alpha1.RetryAnnotation+"=<new value>")
	case s.NextAttempt != nil && p.now.Before(s.NextAttempt.Time):
		p.cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonBackingOff, "next attempt at "+s.NextAttempt.UTC().Format(time.RFC3339))
	case p.env.Spec.Suspend && !deleting:
		p.cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonSuspended, "spec.suspend stops new runs")
	default:
		p.cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonIdle, "nothing to do")
	}
}

// write writes the status when it changed, then sends the Events.
func (p *pass) write(ctx context.Context, orig *v1alpha1.EnvironmentStatus) error {
	if !equality.Semantic.DeepEqual(orig, &p.env.Status) {
		if err := p.r.client.Status().Update(ctx, p.env); err != nil {
			return err
		}
	}
	p.flush()
	return nil
}

// create creates the Run the status now names.
func (p *pass) create(ctx context.Context, run *v1alpha1.Run) error {
	run.Namespace = p.env.Namespace
	run.Labels = map[string]string{LabelEnvironment: p.env.Name}
	run.Spec.Environment = p.env.Name
	run.Spec.TTLSecondsAfterFinished = ptrInt32(int32(p.r.Options.RunTTL / time.Second))
	run.Spec.Timeout = &metav1.Duration{Duration: v1alpha1.DefaultRunTimeout}
	if t := p.env.Spec.RunTimeout; t != nil {
		run.Spec.Timeout = t.DeepCopy()
	}
	if err := controllerutil.SetControllerReference(p.env, run, p.r.scheme); err != nil {
		return err
	}
	if err := p.r.client.Create(ctx, run); err != nil {
		// AlreadyExists requeues: the next pass reads it and, when it is
		// not this Environment's, takes the next name.
		return err
	}
	if run.Spec.Operation == v1alpha1.OpDrift {
		// A routine drift check sends no Event: at thousands of
		// Environments they would be most of the API's writes. Its
		// outcome is in the status, and Events tell of drift found.
		p.flush()
		return nil
	}
	msg := fmt.Sprintf("created run %s (%s", run.Name, run.Spec.Operation)
	if run.Spec.Revision != "" {
		msg += ", revision " + run.Spec.Revision
	}
	if run.Spec.Commit != "" {
		msg += ", commit " + run.Spec.Commit
	}
	p.event(corev1.EventTypeNormal, EventRunCreated, run, "%s)", msg)
	p.flush()
	return nil
}

// expire deletes an Environment whose TTL passed; deletion destroys it.
func (p *pass) expire(ctx context.Context, orig *v1alpha1.EnvironmentStatus) error {
	if err := p.write(ctx, orig); err != nil {
		return err
	}
	uid := p.env.UID
	err := p.r.client.Delete(ctx, p.env, client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	policy, _ := p.r.Options.Registry.DeletionPolicy(p.env.Name, p.env.Spec)
	p.event(corev1.EventTypeNormal, EventExpired, nil, "spec.ttl %s passed at %s; deleting (deletion policy %s)",
		p.env.Spec.TTL.Duration, p.env.Status.ExpiresAt.UTC().Format(time.RFC3339), policy)
	p.flush()
	return nil
}

// letGo ends an Environment's deletion: its Secrets are released, its
// status written and its finalizer removed.
func (p *pass) letGo(ctx context.Context, orig *v1alpha1.EnvironmentStatus) error {
	if err := p.r.secrets().Unprotect(ctx, p.env); err != nil {
		return err
	}
	if err := p.write(ctx, orig); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(p.env, v1alpha1.Finalizer)
	if err := p.r.client.Update(ctx, p.env); err != nil {
		return err
	}
	p.r.sources.forget(client.ObjectKeyFromObject(p.env))
	p.r.detached.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), string(p.env.UID)+"/") {
			p.r.detached.Delete(k)
		}
		return true
	})
	return nil
}

// release removes the finalizer once the stack is destroyed (or there was
// never one).
func (p *pass) release(ctx context.Context, orig *v1alpha1.EnvironmentStatus, destroyed bool) error {
	p.cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonDestroying, "destroyed; removing the finalizer")
	if err := p.letGo(ctx, orig); err != nil {
		return err
	}
	if destroyed {
		p.event(corev1.EventTypeNormal, EventDestroyed, nil, "stack %s destroyed by run %s", p.env.Status.Stack, p.env.Status.LastRun.Name)
	} else {
		p.event(corev1.EventTypeNormal, EventDestroyed, nil, "no run ever started; nothing to destroy")
	}
	p.flush()
	return nil
}

// allowed reports whether a new Run may start now (not stalled, not
// backing off), and schedules a wake-up at the back-off's end.
func (p *pass) allowed() bool {
	s := &p.env.Status
	if p.is(v1alpha1.ConditionStalled) {
		return false
	}
	if s.NextAttempt != nil && p.now.Before(s.NextAttempt.Time) {
		p.at(s.NextAttempt.Time)
		return false
	}
	return true
}

// destroy is the destroy Run of a deleted Environment: from status.stack,
// so it works when the definition is no longer registered. Only a stall of
// destroy Runs (and their back-off) holds it back: the spec's problems do
// not matter any more.
func (p *pass) destroy() *v1alpha1.Run {
	s := &p.env.Status
	if p.is(v1alpha1.ConditionStalled) {
		if s.LastRun != nil && s.LastRun.Operation == v1alpha1.OpDestroy {
			return nil
		}
		if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionStalled); c.Reason == ReasonNamespaceTerminating {
			return nil // no Run can be created; the condition says how to finish
		}
		p.cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonDestroying, "the Environment is being deleted")
	}
	if s.NextAttempt != nil && p.now.Before(s.NextAttempt.Time) {
		p.at(s.NextAttempt.Time)
		return nil
	}
	p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonDestroying, "the Environment is being deleted; destroying stack "+s.Stack)
	return &v1alpha1.Run{Spec: v1alpha1.RunSpec{Operation: v1alpha1.OpDestroy, Stack: s.Stack, RemoveStack: true,
		Revision: s.Revision, Commit: s.LastAppliedCommit, Inputs: *p.env.Spec.Inputs.DeepCopy()}}
}

// desired is the Run to create now, if any: an up for a new revision, else
// a drift check when one is due.
func (p *pass) desired(ctx context.Context) *v1alpha1.Run {
	env, s := p.env, &p.env.Status
	if env.Spec.Suspend {
		return nil
	}
	in, commit, ok, err := p.inputs(ctx)
	if !ok {
		return nil
	}
	if err == nil {
		err = p.r.Options.Registry.Check(env.Namespace, env.Name, in)
	}
	if err != nil {
		p.invalid(err)
		return nil
	}
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason == v1alpha1.ReasonInvalidSpec && !p.is(v1alpha1.ConditionStalled) {
		p.cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing, "the spec is valid")
	}
	version := p.r.Options.Registry.DefinitionVersion(in.Definition)
	rev := fleet.RevisionOf(in, commit, version)
	if rev != s.Revision && p.is(v1alpha1.ConditionStalled) {
		// A new Git commit or a new version of the definition may fix what
		// stalled it: try again.
		p.unstall(ReasonRevisionChanged, fmt.Sprintf("revision %s (a new commit or definition version) replaces %s", rev, orNone(s.Revision)))
		if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason == v1alpha1.ReasonInvalidSpec {
			p.cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing, "the spec is valid")
		}
	}
	s.Revision = rev
	if !p.allowed() {
		return nil
	}
	if s.Revision != s.LastAppliedRevision {
		if !p.secretsOK(ctx, in) {
			return nil
		}
		if stack := p.stack(in); stack != "" {
			s.Stack = stack
		}
		return &v1alpha1.Run{Spec: v1alpha1.RunSpec{Operation: v1alpha1.OpUp, Stack: s.Stack,
			Revision: s.Revision, DefinitionVersion: version, Commit: commit, Inputs: in}}
	}
	d := env.Spec.Drift
	if d == nil || d.Interval.Duration <= 0 || !p.is(v1alpha1.ConditionReady) {
		return nil
	}
	var base time.Time
	if s.LastDriftCheck != nil {
		base = s.LastDriftCheck.Time
	}
	if l := s.LastRun; l != nil && l.Operation == v1alpha1.OpUp && l.Phase == v1alpha1.RunSucceeded && l.CompletionTime != nil &&
		l.CompletionTime.After(base) {
		base = l.CompletionTime.Time
	}
	// Spread over the interval by the Environment's slot (package jitter).
	if due := jitter.Due(env.Namespace+"/"+env.Name, base, p.now, d.Interval.Duration); p.now.Before(due) {
		p.at(due)
		return nil
	}
	if !p.secretsOK(ctx, in) {
		return nil
	}
	return &v1alpha1.Run{Spec: v1alpha1.RunSpec{Operation: v1alpha1.OpDrift, Stack: s.Stack, Remediate: d.Remediate,
		Revision: s.Revision, DefinitionVersion: version, Commit: s.LastAppliedCommit, Inputs: in}}
}

// invalid records a spec refused before any Run: Ready False and Stalled
// with reason InvalidSpec.
func (p *pass) invalid(err error) {
	msg := err.Error()
	if p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, msg) {
		p.event(corev1.EventTypeWarning, EventInvalidSpec, nil, "%s", msg)
	}
	p.stall(v1alpha1.ReasonInvalidSpec, msg)
}

// secretsOK checks the Secrets that decide isolation (secrets.Guard.Check)
// just before a Run is created, never on a pass that creates none: they
// are read without a cache, and a fleet's routine passes must not read
// every Environment's Secrets. A refused Secret makes the spec invalid.
func (p *pass) secretsOK(ctx context.Context, in v1alpha1.Inputs) bool {
	if err := p.r.secrets().Check(ctx, p.env, in); err != nil {
		p.invalid(err)
		return false
	}
	return true
}

// stack is the state's project/stack of the inputs' definition.
//
// Stack identity: an Environment's stack and the names its program derives
// its objects from are per namespace and name (fleet.Spec). An Environment
// whose status.stack recorded the stack of an earlier version, named after
// the Environment alone ("<project>/<name>"), keeps that stack and those
// names (and the runner builds its program without a tenant): it is never
// moved to a second copy, and deleting it destroys the stack it has. To
// give it the per-namespace identity, delete it (its stack is destroyed)
// and create it again.
func (p *pass) stack(in v1alpha1.Inputs) string {
	b, err := p.r.Options.Registry.Definition(in.Definition)
	if err != nil {
		return ""
	}
	spec := fleet.Spec(p.env.Namespace, p.env.Name, in)
	// The target kubeconfig is the runner's to read; a definition checks
	// only that its path is set (as fleet.Check does).
	spec.Kubeconfig = os.DevNull
	prog, err := b.Build(spec)
	if err != nil || prog.Project == "" || prog.Stack == "" {
		return ""
	}
	// An Environment that recorded its stack before stacks were per
	// namespace keeps it: never a silent second copy (see pass.stack).
	if legacy := prog.Project + "/" + stacks.StackName("", p.env.Name, false); p.env.Status.Stack == legacy {
		return legacy
	}
	return prog.Project + "/" + prog.Stack
}

// fold records a finished Run in the status.
func (p *pass) fold(run *v1alpha1.Run) {
	s, st := &p.env.Status, &run.Status
	done := st.CompletionTime
	if done == nil {
		done = ptrTime(p.now)
	}
	s.ActiveRun = ""
	if s.NextDriftRun == run.Name {
		s.NextDriftRun = ""
	}
	s.LastRun = &v1alpha1.RunRef{Name: run.Name, Operation: run.Spec.Operation, Phase: st.Phase,
		Reason: st.Reason, Message: clip(st.Message, 4000), CompletionTime: done}
	if st.Stack != "" {
		s.Stack = st.Stack
	}
	op := run.Spec.Operation
	if st.Phase == v1alpha1.RunSucceeded {
		s.Failures, s.NextAttempt = 0, nil
		if op != v1alpha1.OpDrift {
			// A drift check's Events are DriftDetected and DriftRemediated.
			p.event(corev1.EventTypeNormal, EventRunSucceeded, run, "run %s (%s) succeeded", run.Name, op)
		}
		switch op {
		case v1alpha1.OpUp:
			p.applied(run)
		case v1alpha1.OpDrift:
			p.drifted(run)
		}
		return
	}
	msg := st.Message
	if msg == "" {
		msg = "no message"
	}
	p.event(corev1.EventTypeWarning, EventRunFailed, run, "run %s (%s) failed: %s: %s", run.Name, op, st.Reason, msg)
	switch st.Reason {
	case v1alpha1.ReasonPolicyBlocked:
		text := fmt.Sprintf("run %s (%s) was blocked by policy: %s", run.Name, op, msg)
		if p.cond(v1alpha1.ConditionPolicyBlocked, metav1.ConditionTrue, v1alpha1.ReasonPolicyBlocked, text) {
			p.event(corev1.EventTypeWarning, EventPolicyBlocked, run, "%s", text)
		}
		p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPolicyBlocked, text)
		p.stall(v1alpha1.ReasonPolicyBlocked, text+"; retrying cannot help: change the spec (or the policy settings), then annotate "+v1alpha1.RetryAnnotation+"=<new value> if needed")
	case v1alpha1.ReasonInvalidSpec:
		text := fmt.Sprintf("run %s (%s): invalid spec: %s", run.Name, op, msg)
		p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, text)
		p.stall(v1alpha1.ReasonInvalidSpec, text)
	default:
		p.failed(run, msg)
	}
}

// applied records a successful up.
func (p *pass) applied(run *v1alpha1.Run) {
	s := &p.env.Status
	s.LastAppliedRevision, s.LastAppliedCommit = run.Spec.Revision, run.Spec.Commit
	s.Outputs = run.Status.Outputs
	msg := fmt.Sprintf("revision %s applied by run %s", run.Spec.Revision, run.Name)
	if run.Spec.Commit != "" {
		msg += " (commit " + run.Spec.Commit + ")"
	}
	if !p.is(v1alpha1.ConditionReady) {
		p.event(corev1.EventTypeNormal, EventReady, run, "%s", msg)
	}
	p.cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, msg)
	p.cond(v1alpha1.ConditionPolicyBlocked, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, "run "+run.Name+" passed its policies")
	p.cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, "run "+run.Name+" succeeded")
	p.cond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, "run "+run.Name+" applied the program")
}

// drifted records a successful drift check.
func (p *pass) drifted(run *v1alpha1.Run) {
	p.env.Status.LastDriftCheck = ptrTime(p.now)
	st := run.Status
	if len(st.Drift) == 0 {
		p.cond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonNoDrift, "run "+run.Name+" found no drift")
		return
	}
	what := describeDrift(st.Drift)
	if st.Remediated {
		msg := fmt.Sprintf("run %s corrected drift: %s", run.Name, what)
		p.cond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonRemediated, msg)
		p.event(corev1.EventTypeNormal, EventDriftRemediated, run, "%s", msg)
		return
	}
	msg := fmt.Sprintf("run %s found drift: %s", run.Name, what)
	p.cond(v1alpha1.ConditionDrifted, metav1.ConditionTrue, v1alpha1.ReasonDriftDetected, msg)
	p.event(corev1.EventTypeWarning, EventDriftDetected, run, "%s", msg)
}

// failed records a failed Run that a retry may fix: back-off, then Stalled
// after MaxFailures in a row. A failed drift check leaves Ready alone
// (the last up still holds).
func (p *pass) failed(run *v1alpha1.Run, msg string) {
	s := &p.env.Status
	backoff, maxBackoff, maxFailures := p.retry()
	s.Failures++
	wait := backoff
	for i := int32(1); i < s.Failures && wait < maxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, maxBackoff)
	s.NextAttempt = ptrTime(p.now.Add(wait))
	text := fmt.Sprintf("run %s (%s) failed: %s", run.Name, run.Spec.Operation, msg)
	if run.Spec.Operation != v1alpha1.OpDrift {
		p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonFailed, text)
	}
	if s.Failures >= maxFailures {
		p.stall(ReasonRetriesExhausted, fmt.Sprintf("%d runs failed in a row; last: %s. Fix the spec or annotate %s=<new value>",
			s.Failures, text, v1alpha1.RetryAnnotation))
	}
}

// retry is the back-off policy: spec.retry, else the operator's defaults.
func (p *pass) retry() (backoff, maxBackoff time.Duration, maxFailures int32) {
	o := p.r.Options
	backoff, maxBackoff, maxFailures = o.Backoff, o.MaxBackoff, o.MaxFailures
	if r := p.env.Spec.Retry; r != nil {
		if r.Backoff != nil && r.Backoff.Duration > 0 {
			backoff = r.Backoff.Duration
		}
		if r.MaxBackoff != nil && r.MaxBackoff.Duration > 0 {
			maxBackoff = r.MaxBackoff.Duration
		}
		if r.MaxFailures != nil && *r.MaxFailures > 0 {
			maxFailures = *r.MaxFailures
		}
	}
	return backoff, max(backoff, maxBackoff), maxFailures
}

// describeDrift names the drifted resources and properties:
// "<type> <name>: <properties>; ...".
func describeDrift(drift []v1alpha1.DriftedResource) string {
	parts := make([]string, 0, len(drift))
	for _, d := range drift {
		name := d.URN
		if i := strings.LastIndex(name, "::"); i >= 0 {
			name = name[i+2:]
		}
		part := strings.TrimSpace(d.Type + " " + name)
		if len(d.Properties) > 0 {
			part += ": " + strings.Join(d.Properties, ", ")
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

// clip shortens s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}

func ptrTime(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func ptrInt32(v int32) *int32 { return &v }

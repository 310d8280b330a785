package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/slipwayhq/slipway/automation/optup"
	"log/slog"
	"os"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/runner/internal/credentials"
	"github.com/slipwayhq/slipway/automation/fleet/runner/internal/lease"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// errNotOwner says the Run's status names another runner (or attempt)
// now, or the Run finished: this runner must not write it.
var errNotOwner = errors.New("runner: the run is no longer this runner's")

// execute runs a Run this runner holds (claimed or taken over) under its
// Lease, whose heartbeat cancels the run when it is lost, and records the
// outcome. An interrupted run (lost Lease, shutdown) records nothing: the
// runner that takes it over runs it again; the result then asks for the
// Run to be checked again after LeaseDuration.
func (r *Runner) execute(ctx context.Context, run *v1alpha1.Run, lease *coordinationv1.Lease, since time.Time, prev takeover, log *slog.Logger) ctrl.Result {
	again := ctrl.Result{RequeueAfter: r.o.LeaseDuration}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hb, err := r.leases.Beat(run, lease, since, cancel, log)
	if err != nil {
		log.Error("could not start the run's heartbeat; leaving the run to be taken over", "error", err)
		r.leases.Release(ctx, lease, log)
		return again
	}
	defer hb.Stop()

	start := metav1.Now()
	if err := r.updateStatus(runCtx, run, func(s *v1alpha1.RunStatus) {
		s.Phase, s.StartTime = v1alpha1.RunRunning, &start
	}); err != nil {
		log.Warn("could not mark the run Running; leaving it to whoever holds it", "error", err)
		return again
	}
	res := r.performWithin(runCtx, run, prev, hb.Fence(), log)
	if runCtx.Err() != nil {
		r.interrupted(run, context.Cause(runCtx), log)
		return again
	}
	done := metav1.Now()
	err = r.updateStatus(runCtx, run, func(s *v1alpha1.RunStatus) {
		res.apply(s)
		s.CompletionTime = &done
	})
	last := hb.Stop()
	if err != nil {
		switch {
		case runCtx.Err() != nil:
			r.interrupted(run, context.Cause(runCtx), log)
		case errors.Is(err, errNotOwner):
			log.Warn("the run's outcome was not recorded: another runner holds the run now", "error", err)
		default:
			log.Error("could not record the run's outcome; its lease expires and another runner runs it again", "error", err)
		}
		return again
	}
	r.leases.Release(ctx, last, log)
	r.leases.Forget(key(run))
	if res.failed {
		log.Warn("run failed", "reason", res.reason, "message", res.message)
		r.event(run, corev1.EventTypeWarning, "Failed", "Run", res.reason+": "+res.message)
		return ctrl.Result{}
	}
	log.Info("run succeeded", "message", res.message)
	if run.Spec.Operation != v1alpha1.OpDrift || len(res.drift) > 0 {
		// A drift check that found nothing has no Event (see claim).
		r.event(run, corev1.EventTypeNormal, "Succeeded", "Run", res.message)
	}
	return ctrl.Result{}
}

// interrupted logs why a run stopped without an outcome.
func (r *Runner) interrupted(run *v1alpha1.Run, cause error, log *slog.Logger) {
	if errors.Is(cause, lease.ErrLost) {
		log.Warn("run abandoned: this runner lost its lease", "cause", cause)
		r.event(run, corev1.EventTypeWarning, "LeaseLost", "Run", fmt.Sprintf("runner %s lost the run's lease and stopped it", r.o.Identity))
		return
	}
	log.Info("run interrupted (shutdown); another runner takes it over when its lease expires", "cause", cause)
}

// updateStatus writes mutate's change to the Run's status on the version
// this runner last wrote. A Conflict re-reads the Run: still this
// runner's attempt means write again, anything else is errNotOwner.
// Other errors are retried until ctx ends (the Lease bounds it).
func (r *Runner) updateStatus(ctx context.Context, run *v1alpha1.Run, mutate func(*v1alpha1.RunStatus)) error {
	backoff := 250 * time.Millisecond
	for {
		cp := run.DeepCopy()
		mutate(&cp.Status)
		err := r.client.Status().Update(ctx, cp)
		if err == nil {
			*run = *cp
			return nil
		}
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: %v", errNotOwner, err)
		}
		if apierrors.IsConflict(err) {
			var cur v1alpha1.Run
			if err = r.api.Get(ctx, key(run), &cur); err == nil {
				if cur.Status.Runner != r.o.Identity || cur.Status.Attempts != run.Status.Attempts || cur.Status.Phase.Finished() {
					return errNotOwner
				}
				*run = cur
				continue
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runner: writing the status of run %s: %w (%v)", key(run), err, context.Cause(ctx))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// perform reads the Run's Secrets, builds its program and runs its
// operation with a fresh engine in a work directory of its own.
func (r *Runner) perform(ctx context.Context, run *v1alpha1.Run, prev takeover, fenceFile string, log *slog.Logger) (res result) {
	spec := run.Spec
	var redact []string
	defer func() { res.redact(redact) }()
	fail := func(err error) result {
		res.fail(err, redact)
		return res
	}
	switch spec.Operation {
	case v1alpha1.OpPreview, v1alpha1.OpUp, v1alpha1.OpRefresh, v1alpha1.OpDrift, v1alpha1.OpDestroy:
	default:
		return fail(&fleet.FieldError{Field: "spec.operation", Err: fmt.Errorf("%q is not an operation; use preview, up, refresh, drift or destroy", spec.Operation)})
	}
	in, err := credentials.Read(ctx, r.api, run, r.o.AllowRunnerCredentials)
	redact = in.Redact
	if err != nil {
		return fail(err)
	}
	kubeconfig, cleanup, err := credentials.WriteKubeconfig(r.cfg, r.o.WorkDir, run, in.Kubeconfig, r.log)
	if err != nil {
		return fail(err)
	}
	defer cleanup()

	prog, packs, settings, err := r.program(run, kubeconfig, in.Secrets)
	if err != nil {
		if spec.Operation != v1alpha1.OpDestroy {
			return fail(err)
		}
		// A destroy needs no program: the state says what to delete.
		orphan, oerr := orphanProgram(run)
		if oerr != nil {
			return fail(errors.Join(err, oerr))
		}
		log.Warn("destroying the stack from its state alone", "stack", spec.Stack, "because", message(err, redact))
		prog, packs = orphan, nil
	}
	res.stack = prog.Project + "/" + prog.Stack

	work, err := os.MkdirTemp(r.o.WorkDir, "run-"+run.Name+"-")
	if err != nil {
		return fail(fmt.Errorf("runner: work directory: %w", err))
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			log.Warn("removing the run's work directory failed", "dir", work, "error", err)
		}
	}()
	opts := append([]automation.EngineOption{automation.WithLogger(log)}, r.o.Engine...)
	opts = append(opts, automation.WithDir(work), automation.WithBackend(spec.Backend.URL))
	if in.Passphrase != nil {
		opts = append(opts, automation.WithPassphrase(*in.Passphrase))
	}
	if len(in.Env) > 0 {
		opts = append(opts, automation.WithEnv(in.Env))
	}
	// Last: no other option (WithEnv) may drop the fence. Only the
	// operator's detached destroy runs without one (no Lease there: see
	// Detached); a runner's Run always has its fence file.
	if fenceFile != "" {
		opts = append(opts, automation.WithFence(fenceFile))
	}
	if hosts := prev.deadHosts(r.o.Host); len(hosts) > 0 {
		opts = append(opts, automation.WithDeadHosts(hosts...))
	}
	e, err := automation.New(ctx, opts...)
	if err != nil {
		return fail(err)
	}
	if len(packs) > 0 {
		dir, err := e.PolicyDir(prog.Stack, settings, packs...)
		if err != nil {
			return fail(err)
		}
		prog.Policies = append(prog.Policies, dir)
	}
	err = r.operate(ctx, e, prog, spec, &res)
	res.recovery = describeRecovery(res.rec, prev)
	if err != nil {
		return fail(err)
	}
	return res
}

// program builds the Run's program from its definition in the registry, with the target
// kubeconfig and the secrets, and its policy packs and settings. Its
// errors are *fleet.FieldError naming the field.
func (r *Runner) program(run *v1alpha1.Run, kubeconfig string, secrets map[string]string) (automation.Program, []*policypacks.Pack, policypacks.Settings, error) {
	in := run.Spec.Inputs
	var settings policypacks.Settings
	b, err := r.o.Registry.Definition(in.Definition)
	if err != nil {
		return automation.Program{}, nil, settings, err
	}
	spec := fleet.Spec(run.Namespace, run.Spec.Environment, in)
	spec.Kubeconfig, spec.Secrets = kubeconfig, secrets
	prog, err := b.Build(spec)
	if err != nil {
		return automation.Program{}, nil, settings, &fleet.FieldError{Field: buildField(err), Err: fmt.Errorf("definition %s: %w", in.Definition, err)}
	}
	if want := run.Spec.Stack; want != "" && want != prog.Project+"/"+prog.Stack {
		// An Environment that recorded its stack before stacks were per
		// namespace keeps it, and the names derived from it (fleet.Spec).
		if want != prog.Project+"/"+stacks.StackName("", run.Spec.Environment, false) {
			return automation.Program{}, nil, settings, &fleet.FieldError{Field: "spec.stack",
				Err: fmt.Errorf("%q is not the stack of definition %s for Environment %s/%s (%s/%s)", want, in.Definition, run.Namespace, run.Spec.Environment, prog.Project, prog.Stack)}
		}
		spec.Tenant = ""
		if prog, err = b.Build(spec); err != nil {
			return automation.Program{}, nil, settings, &fleet.FieldError{Field: buildField(err), Err: fmt.Errorf("definition %s: %w", in.Definition, err)}
		}
	}
	packs, err := r.o.Registry.PolicyPacks(in.Policy.Packs)
	if err != nil {
		return automation.Program{}, nil, settings, err
	}
	kind, err := fleet.Kind(b, run.Spec.Environment, in)
	if err != nil {
		return automation.Program{}, nil, settings, err
	}
	settings, err = fleet.Settings(in, kind, packs)
	if err != nil {
		return automation.Program{}, nil, settings, err
	}
	return prog, packs, settings, nil
}

// buildField is the Run field a build error is about: the secrets when
// every problem is about them, else the parameters.
func buildField(err error) string {
	var inv *stacks.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) == 0 {
		return "spec.params"
	}
	for _, p := range inv.Problems {
		var fe *stacks.FieldError
		if !errors.As(p, &fe) || fe.Field != "Secrets" {
			return "spec.params"
		}
	}
	return "spec.secrets"
}

// orphanProgram is the program of a destroy whose program is gone: the
// stack "project/stack" with a program that declares nothing, and the
// Kubernetes provider the state's resources need.
func orphanProgram(run *v1alpha1.Run) (automation.Program, error) {
	stack := run.Spec.Stack
	project, name, ok := splitStack(stack)
	if !ok {
		return automation.Program{}, &fleet.FieldError{Field: "spec.stack",
			Err: fmt.Errorf("%q is not project/stack; a destroy whose definition is not registered needs the stack the state holds (status.stack of the Environment)", stack)}
	}
	// Only this Environment's stack: per namespace, or as recorded before
	// stacks were per namespace.
	if env := run.Spec.Environment; name != stacks.StackName(run.Namespace, env, false) && name != stacks.StackName("", env, false) {
		return automation.Program{}, &fleet.FieldError{Field: "spec.stack",
			Err: fmt.Errorf("%q is not a stack of Environment %s/%s (%s or %s)", stack, run.Namespace, env,
				stacks.StackName(run.Namespace, env, false), stacks.StackName("", env, false))}
	}
	return automation.Program{Project: project, Stack: name, Run: func(*pulumi.Context) error { return nil },
		Plugins: []automation.Plugin{automation.KubernetesPlugin}}, nil
}

// operate opens the stack and runs the Run's operation on it.
func (r *Runner) operate(ctx context.Context, e *automation.Engine, prog automation.Program, spec v1alpha1.RunSpec, res *result) error {
	open := e.SelectStack
	if spec.Operation == v1alpha1.OpUp || spec.Operation == v1alpha1.OpPreview {
		open = e.UpsertStack
	}
	st, err := open(ctx, prog)
	if err != nil {
		if spec.Operation == v1alpha1.OpDestroy && automation.IsUnknownStack(err) {
			res.message = fmt.Sprintf("destroy: the backend holds no stack %s; nothing to destroy", res.stack)
			return nil
		}
		return err
	}
	res.rec = st.LastRecovery()
	switch spec.Operation {
	case v1alpha1.OpUp:
		// The release history records which Git commit each release applied.
		out, err := st.Up(ctx, optup.Revision(spec.Commit))
		res.from(out)
		if err != nil {
			return err
		}
		res.message = "up: " + summary(res.changes)
		outs, err := st.Auto().Outputs(ctx)
		if err != nil {
			res.message += " (reading the outputs failed)"
			break
		}
		res.outputs = outputs(outs)
	case v1alpha1.OpPreview:
		out, err := st.Preview(ctx)
		res.from(out)
		if err != nil {
			return err
		}
		res.message = "preview: " + summary(res.changes)
		if len(res.changes) > 0 {
			res.message = "preview: would " + summary(res.changes)
		}
	case v1alpha1.OpRefresh:
		out, err := st.Refresh(ctx)
		res.from(out)
		if err != nil {
			return err
		}
		res.message = "refresh: " + summary(res.changes)
	case v1alpha1.OpDrift:
		var opts []optdrift.Option
		if spec.Remediate {
			opts = append(opts, optdrift.Remediate())
		}
		d, err := st.CheckDrift(ctx, opts...)
		res.fromDrift(d)
		if err != nil {
			return err
		}
	case v1alpha1.OpDestroy:
		var opts []optdestroy.Option
		if spec.RemoveStack {
			opts = append(opts, optdestroy.RemoveStack())
		}
		out, err := st.Destroy(ctx, opts...)
		res.from(out)
		if err != nil {
			return err
		}
		res.message = "destroy: " + summary(res.changes)
		if spec.RemoveStack {
			res.message += "; stack " + res.stack + " removed"
		}
	}
	return nil
}

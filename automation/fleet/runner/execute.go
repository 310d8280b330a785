package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/slipwayhq/slipway/automation/optup"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
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
	r.event(run, corev1.EventTypeNormal, "Succeeded", "Run", res.message)
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

// inputs is what a Run's execution reads from Secrets; redact holds every
// value read, to keep them out of messages.
type inputs struct {
	passphrase *string
	env        map[string]string
	kubeconfig []byte
	secrets    map[string]string
	redact     []string
}

// readSecrets reads the Run's Secrets with the uncached reader (get only).
// A missing Secret or key is an ordinary failure (the Secret may be
// created later), named by its field.
func (r *Runner) readSecrets(ctx context.Context, run *v1alpha1.Run) (inputs, error) {
	var in inputs
	read := map[string]*corev1.Secret{}
	get := func(name string) (*corev1.Secret, error) {
		if s, ok := read[name]; ok {
			return s, nil
		}
		var s corev1.Secret
		if err := r.api.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("Secret %s/%s does not exist; create it", run.Namespace, name)
			}
			return nil, fmt.Errorf("reading Secret %s/%s: %w", run.Namespace, name, err)
		}
		read[name] = &s
		return &s, nil
	}
	value := func(field string, ref v1alpha1.SecretKeyRef) (string, error) {
		s, err := get(ref.Name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return "", fmt.Errorf("%s: Secret %s/%s has no key %q; add it", field, run.Namespace, ref.Name, ref.Key)
		}
		in.redact = append(in.redact, string(v))
		return string(v), nil
	}
	spec := run.Spec.Inputs
	if name := spec.Backend.EnvFromSecret; name != "" {
		s, err := get(name)
		if err != nil {
			return in, fmt.Errorf("spec.backend.envFromSecret: %w", err)
		}
		if err := fleet.CheckEnvKeys(name, slices.Collect(maps.Keys(s.Data))); err != nil {
			return in, err
		}
		in.env = map[string]string{}
		for k, v := range s.Data {
			in.env[k] = string(v)
			in.redact = append(in.redact, string(v))
		}
		if p, ok := in.env["PULUMI_CONFIG_PASSPHRASE"]; ok {
			in.passphrase = &p
		}
	}
	if ref := spec.Backend.PassphraseSecretRef; ref != nil {
		p, err := value("spec.backend.passphraseSecretRef", *ref)
		if err != nil {
			return in, err
		}
		in.passphrase = &p
	}
	if ref := spec.Target.KubeconfigSecretRef; ref != nil {
		kc, err := value("spec.target.kubeconfigSecretRef", *ref)
		if err != nil {
			return in, err
		}
		in.kubeconfig = []byte(kc)
		in.redact = append(in.redact, kubeconfigSecrets(in.kubeconfig)...)
		if err := fleet.CheckKubeconfig(in.kubeconfig); err != nil {
			return in, err
		}
	} else if err := fleet.CheckTarget(run.Namespace, spec, r.o.AllowRunnerCredentials); err != nil {
		return in, err
	}
	for i, s := range spec.Secrets {
		v, err := value(fmt.Sprintf("spec.secrets[%d] (%s)", i, s.Name), s.ValueFrom)
		if err != nil {
			return in, err
		}
		if in.secrets == nil {
			in.secrets = map[string]string{}
		}
		in.secrets[s.Name] = v
	}
	return in, nil
}

// kubeconfigSecrets are the credentials in a kubeconfig, as they could
// appear in an error.
func kubeconfigSecrets(b []byte) []string {
	c, err := clientcmd.Load(b)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range c.AuthInfos {
		out = append(out, a.Token, a.Password, string(a.ClientKeyData))
	}
	return out
}

// kubeconfigPath is where a Run's target kubeconfig is written: one path
// per environment, the same for every runner with the same WorkDir, since
// the state records it in the Kubernetes provider's configuration (a
// refresh or destroy reads it from there).
func (r *Runner) kubeconfigPath(run *v1alpha1.Run) string {
	return filepath.Join(r.o.WorkDir, "kubeconfigs", run.Namespace, run.Spec.Environment+".yaml")
}

// writeKubeconfig writes the target kubeconfig (the Secret's, else this
// runner's own credentials) to the Run's path, readable by this user only,
// and returns its path and how to remove it.
func (r *Runner) writeKubeconfig(run *v1alpha1.Run, content []byte) (string, func(), error) {
	if content == nil {
		var err error
		if content, err = ownKubeconfig(r.cfg); err != nil {
			return "", nil, err
		}
	}
	path := r.kubeconfigPath(run)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", nil, fmt.Errorf("runner: kubeconfig directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return "", nil, fmt.Errorf("runner: writing the target kubeconfig: %w", err)
	}
	_, werr := tmp.Write(content)
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return "", nil, fmt.Errorf("runner: writing the target kubeconfig: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return "", nil, fmt.Errorf("runner: writing the target kubeconfig: %w", err)
	}
	return path, func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("removing the target kubeconfig failed", "path", path, "error", err)
		}
	}, nil
}

// ownKubeconfig is a kubeconfig for the runner's own cluster credentials
// (files, such as a service account's token, are referenced, so they
// rotate).
func ownKubeconfig(cfg *rest.Config) ([]byte, error) {
	c := clientcmdapi.NewConfig()
	c.Clusters["target"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthority: cfg.CAFile,
		CertificateAuthorityData: cfg.CAData, InsecureSkipTLSVerify: cfg.Insecure, TLSServerName: cfg.ServerName}
	auth := &clientcmdapi.AuthInfo{ClientCertificate: cfg.CertFile, ClientCertificateData: cfg.CertData,
		ClientKey: cfg.KeyFile, ClientKeyData: cfg.KeyData, Username: cfg.Username, Password: cfg.Password,
		Impersonate: cfg.Impersonate.UserName, ImpersonateGroups: cfg.Impersonate.Groups,
		Exec: cfg.ExecProvider, AuthProvider: cfg.AuthProvider}
	if cfg.BearerTokenFile != "" {
		auth.TokenFile = cfg.BearerTokenFile
	} else {
		auth.Token = cfg.BearerToken
	}
	c.AuthInfos["runner"] = auth
	c.Contexts["target"] = &clientcmdapi.Context{Cluster: "target", AuthInfo: "runner"}
	c.CurrentContext = "target"
	b, err := clientcmd.Write(*c)
	if err != nil {
		return nil, fmt.Errorf("runner: writing a kubeconfig for the runner's own credentials: %w", err)
	}
	return b, nil
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
	in, err := r.readSecrets(ctx, run)
	redact = in.redact
	if err != nil {
		return fail(err)
	}
	kubeconfig, cleanup, err := r.writeKubeconfig(run, in.kubeconfig)
	if err != nil {
		return fail(err)
	}
	defer cleanup()

	prog, packs, settings, err := r.program(run, kubeconfig, in.secrets)
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
	if in.passphrase != nil {
		opts = append(opts, automation.WithPassphrase(*in.passphrase))
	}
	if len(in.env) > 0 {
		opts = append(opts, automation.WithEnv(in.env))
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

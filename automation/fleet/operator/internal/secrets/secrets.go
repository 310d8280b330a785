// Package secrets is what the operator does with the Secrets an
// Environment names: it protects those its destroy reads with a finalizer
// of the Environment (so deleting the namespace cannot take them before
// the destroy ran), and checks those that decide tenant isolation (the
// backend's environment and the target kubeconfig) before a Run is
// created. Package operator calls down into it; it never reads a Secret's
// values except for those checks.
package secrets

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// Deleting a namespace deletes its Secrets at once, while the Environments
// in it wait for their destroy, which needs those Secrets. The operator
// therefore puts a finalizer of the Environment (SecretFinalizerPrefix +
// name) on every Secret its destroy reads, and removes it once the stack
// is destroyed or orphaned (or the spec stops naming the Secret). Only
// the Secrets' metadata is read and patched: their values never reach the
// operator's memory here.

// Guard protects and checks the Secrets of Environments for the operator.
type Guard struct {
	// Reader reads Secrets without a cache (get only).
	Reader client.Reader
	// Client patches the Secrets' metadata.
	Client client.Client
	// Logger logs the failures that are retried next pass.
	Logger *slog.Logger
	// AllowRunnerCredentials are the namespaces whose Environments may
	// omit spec.target.kubeconfigSecretRef (see fleet.CheckTarget).
	AllowRunnerCredentials []string
}

// finalizerName is the Environment's finalizer on its Secrets.
func finalizerName(env *v1alpha1.Environment) string {
	return v1alpha1.SecretFinalizerPrefix + env.Name
}

// destroySecrets are the names of the Secrets a destroy of the spec reads,
// sorted and without repeats.
func destroySecrets(spec v1alpha1.EnvironmentSpec) []string {
	var names []string
	if n := spec.Backend.EnvFromSecret; n != "" {
		names = append(names, n)
	}
	if r := spec.Backend.PassphraseSecretRef; r != nil {
		names = append(names, r.Name)
	}
	if r := spec.Target.KubeconfigSecretRef; r != nil {
		names = append(names, r.Name)
	}
	for _, s := range spec.Secrets {
		names = append(names, s.ValueFrom.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Protect makes env's status.protectedSecrets the Secrets the spec names: the
// finalizer is added to new ones (a Secret that does not exist yet, or is
// being deleted, is tried again next pass) and removed from those no
// longer named. A failure is logged and tried again next pass: it never
// holds up the Environment's Runs.
func (g Guard) Protect(ctx context.Context, env *v1alpha1.Environment) {
	s := &env.Status
	want := destroySecrets(env.Spec)
	if slices.Equal(want, s.ProtectedSecrets) {
		return
	}
	var kept []string
	for _, name := range s.ProtectedSecrets {
		if slices.Contains(want, name) {
			kept = append(kept, name)
			continue
		}
		if err := g.finalizer(ctx, env, name, false); err != nil {
			g.Logger.Warn("removing the environment's finalizer from a Secret it no longer names failed; retrying next pass",
				"environment", env.Namespace+"/"+env.Name, "secret", name, "error", err)
			kept = append(kept, name)
		}
	}
	for _, name := range want {
		if slices.Contains(kept, name) {
			continue
		}
		err := g.finalizer(ctx, env, name, true)
		switch {
		case err == nil:
			kept = append(kept, name)
		case apierrors.IsNotFound(err), errDeleting(err):
		default:
			g.Logger.Warn("protecting a Secret the environment's destroy needs failed; retrying next pass",
				"environment", env.Namespace+"/"+env.Name, "secret", name, "error", err)
		}
	}
	slices.Sort(kept)
	s.ProtectedSecrets = kept
}

// Unprotect removes the Environment's finalizer from every Secret it
// protected (and every Secret its spec names); the Environment's own
// finalizer goes only after this succeeded.
func (g Guard) Unprotect(ctx context.Context, env *v1alpha1.Environment) error {
	names := append(slices.Clone(env.Status.ProtectedSecrets), destroySecrets(env.Spec)...)
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if err := g.finalizer(ctx, env, name, false); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	env.Status.ProtectedSecrets = nil
	return nil
}

// errSecretDeleting says a Secret being deleted cannot get a new finalizer.
type errSecretDeleting struct{}

func (errSecretDeleting) Error() string { return "the Secret is being deleted" }

// errDeleting reports whether err is an errSecretDeleting.
func errDeleting(err error) bool { _, ok := err.(errSecretDeleting); return ok }

// finalizer adds (add) or removes the Environment's finalizer on the
// Secret's metadata, with optimistic concurrency; a conflict (another
// Environment naming the same Secret) reads it again.
func (g Guard) finalizer(ctx context.Context, env *v1alpha1.Environment, name string, add bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return g.patchFinalizer(ctx, env, name, add) })
}

// patchFinalizer is one attempt of finalizer.
func (g Guard) patchFinalizer(ctx context.Context, env *v1alpha1.Environment, name string, add bool) error {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, meta); err != nil {
		return err
	}
	orig := meta.DeepCopy()
	f := finalizerName(env)
	changed := false
	if add {
		if !meta.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(meta, f) {
			return errSecretDeleting{}
		}
		changed = controllerutil.AddFinalizer(meta, f)
	} else {
		changed = controllerutil.RemoveFinalizer(meta, f)
	}
	if !changed {
		return nil
	}
	return g.Client.Patch(ctx, meta, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// Check checks the inputs of env against the operator's allowed namespaces and
// the contents of the Secrets that decide isolation: the keys of
// spec.backend.envFromSecret and the target kubeconfig. A Secret that does
// not exist yet, or cannot be read, is left to the runner (which fails the
// Run naming it); only a Secret read and refused is an error here.
// It is what the operator checks so that an Environment can neither reach
// the runners' credentials nor set the engine's variables (the runners
// check the same before they execute a Run).
func (g Guard) Check(ctx context.Context, env *v1alpha1.Environment, in v1alpha1.Inputs) error {
	if err := fleet.CheckTarget(env.Namespace, in, g.AllowRunnerCredentials); err != nil {
		return err
	}
	get := func(name string) *corev1.Secret {
		var s corev1.Secret
		if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, &s); err != nil {
			g.Logger.Debug("secret not checked; the runner checks it", "environment", env.Namespace+"/"+env.Name, "secret", name, "error", err)
			return nil
		}
		return &s
	}
	if name := in.Backend.EnvFromSecret; name != "" {
		if s := get(name); s != nil {
			if err := fleet.CheckEnvKeys(name, slices.Collect(maps.Keys(s.Data))); err != nil {
				return err
			}
		}
	}
	if ref := in.Target.KubeconfigSecretRef; ref != nil {
		if s := get(ref.Name); s != nil {
			if b, ok := s.Data[ref.Key]; ok {
				return fleet.CheckKubeconfig(b)
			}
		}
	}
	return nil
}

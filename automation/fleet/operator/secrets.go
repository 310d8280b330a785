package operator

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// Deleting a namespace deletes its Secrets at once, while the Environments
// in it wait for their destroy, which needs those Secrets. The operator
// therefore puts a finalizer of the Environment (SecretFinalizerPrefix +
// name) on every Secret its destroy reads, and removes it once the stack
// is destroyed or orphaned (or the spec stops naming the Secret). Only
// the Secrets' metadata is read and patched: their values never reach the
// operator's memory here.

// secretFinalizer is the Environment's finalizer on its Secrets.
func secretFinalizer(env *v1alpha1.Environment) string {
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

// protect makes status.protectedSecrets the Secrets the spec names: the
// finalizer is added to new ones (a Secret that does not exist yet, or is
// being deleted, is tried again next pass) and removed from those no
// longer named. A failure is logged and tried again next pass: it never
// holds up the Environment's Runs.
func (p *pass) protect(ctx context.Context) {
	s := &p.env.Status
	want := destroySecrets(p.env.Spec)
	if slices.Equal(want, s.ProtectedSecrets) {
		return
	}
	var kept []string
	for _, name := range s.ProtectedSecrets {
		if slices.Contains(want, name) {
			kept = append(kept, name)
			continue
		}
		if err := p.secretFinalizer(ctx, name, false); err != nil {
			p.r.Options.Logger.Warn("removing the environment's finalizer from a Secret it no longer names failed; retrying next pass",
				"environment", p.env.Namespace+"/"+p.env.Name, "secret", name, "error", err)
			kept = append(kept, name)
		}
	}
	for _, name := range want {
		if slices.Contains(kept, name) {
			continue
		}
		err := p.secretFinalizer(ctx, name, true)
		switch {
		case err == nil:
			kept = append(kept, name)
		case apierrors.IsNotFound(err), errDeleting(err):
		default:
			p.r.Options.Logger.Warn("protecting a Secret the environment's destroy needs failed; retrying next pass",
				"environment", p.env.Namespace+"/"+p.env.Name, "secret", name, "error", err)
		}
	}
	slices.Sort(kept)
	s.ProtectedSecrets = kept
}

// unprotect removes the Environment's finalizer from every Secret it
// protected (and every Secret its spec names); the Environment's own
// finalizer goes only after this succeeded.
func (p *pass) unprotect(ctx context.Context) error {
	names := append(slices.Clone(p.env.Status.ProtectedSecrets), destroySecrets(p.env.Spec)...)
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if err := p.secretFinalizer(ctx, name, false); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	p.env.Status.ProtectedSecrets = nil
	return nil
}

// errSecretDeleting says a Secret being deleted cannot get a new finalizer.
type errSecretDeleting struct{}

func (errSecretDeleting) Error() string { return "the Secret is being deleted" }

func errDeleting(err error) bool { _, ok := err.(errSecretDeleting); return ok }

// secretFinalizer adds (add) or removes the Environment's finalizer on the
// Secret's metadata, with optimistic concurrency; a conflict (another
// Environment naming the same Secret) reads it again.
func (p *pass) secretFinalizer(ctx context.Context, name string, add bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return p.patchSecretFinalizer(ctx, name, add) })
}

func (p *pass) patchSecretFinalizer(ctx context.Context, name string, add bool) error {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := p.r.reader.Get(ctx, client.ObjectKey{Namespace: p.env.Namespace, Name: name}, meta); err != nil {
		return err
	}
	orig := meta.DeepCopy()
	f := secretFinalizer(p.env)
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
	return p.r.client.Patch(ctx, meta, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

package operator

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// Tenancy: what the operator checks so that an Environment can neither
// reach the runners' credentials nor set the engine's variables (the
// runners check the same before they execute a Run).
//
// Stack identity: an Environment's stack and the names its program derives
// its objects from are per namespace and name (fleet.Spec). An Environment
// whose status.stack recorded the stack of an earlier version, named after
// the Environment alone ("<project>/<name>"), keeps that stack and those
// names (pass.stack, and the runner builds its program without a tenant):
// it is never moved to a second copy, and deleting it destroys the stack it
// has. To give it the per-namespace identity, delete it (its stack is
// destroyed) and create it again.

// tenancy checks the inputs against the operator's allowed namespaces and
// the contents of the Secrets that decide isolation: the keys of
// spec.backend.envFromSecret and the target kubeconfig. A Secret that does
// not exist yet, or cannot be read, is left to the runner (which fails the
// Run naming it); only a Secret read and refused is an error here.
func (p *pass) tenancy(ctx context.Context, in v1alpha1.Inputs) error {
	env := p.env
	if err := fleet.CheckTarget(env.Namespace, in, p.r.Options.AllowRunnerCredentials); err != nil {
		return err
	}
	get := func(name string) *corev1.Secret {
		var s corev1.Secret
		if err := p.r.reader.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, &s); err != nil {
			p.r.Options.Logger.Debug("secret not checked; the runner checks it", "environment", env.Namespace+"/"+env.Name, "secret", name, "error", err)
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

package secrets

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// TestDestroySecrets_EveryReferenceOnceSorted: the Secrets a destroy reads
// are every one the spec names, sorted, without repeats.
func TestDestroySecrets_EveryReferenceOnceSorted(t *testing.T) {
	var spec v1alpha1.EnvironmentSpec
	spec.Backend.EnvFromSecret = "backend"
	spec.Backend.PassphraseSecretRef = &v1alpha1.SecretKeyRef{Name: "pass", Key: "p"}
	spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "backend", Key: "kubeconfig"}
	spec.Secrets = []v1alpha1.SecretValue{{Name: "a", ValueFrom: v1alpha1.SecretKeyRef{Name: "app", Key: "a"}}}
	assert.Equal(t, []string{"app", "backend", "pass"}, destroySecrets(spec))
}

// TestCheck_RefusesEngineVariablesInTheBackendSecret: a backend Secret
// that would set the engine's own variables is refused, naming the key.
func TestCheck_RefusesEngineVariablesInTheBackendSecret(t *testing.T) {
	s, err := fleet.Scheme()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "backend"},
		Data:       map[string][]byte{"PULUMI_HOME": []byte("/elsewhere")}}).Build()
	g := Guard{Reader: c, Client: c, Logger: slog.Default(), AllowRunnerCredentials: []string{"team"}}
	env := &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "dev"}}
	var in v1alpha1.Inputs
	require.NoError(t, g.Check(context.Background(), env, in), "no Secret named: nothing to refuse")
	in.Backend.EnvFromSecret = "backend"
	err = g.Check(context.Background(), env, in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PULUMI_HOME")
}

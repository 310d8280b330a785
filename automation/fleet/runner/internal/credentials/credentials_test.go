package credentials

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// TestRead_SecretValuesAreRedactedAndAMissingKeyNamesItsField: every value
// read is kept for redaction, and a key the Secret lacks fails naming the
// field that refers to it.
func TestRead_SecretValuesAreRedactedAndAMissingKeyNamesItsField(t *testing.T) {
	s, err := fleet.Scheme()
	require.NoError(t, err)
	api := fake.NewClientBuilder().WithScheme(s).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app"},
		Data:       map[string][]byte{"token": []byte("s3cret")}}).Build()
	run := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "r"}}
	run.Spec.Inputs.Secrets = []v1alpha1.SecretValue{{Name: "token", ValueFrom: v1alpha1.SecretKeyRef{Name: "app", Key: "token"}}}

	in, err := Read(context.Background(), api, run, []string{"team"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"token": "s3cret"}, in.Secrets)
	assert.Contains(t, in.Redact, "s3cret")

	run.Spec.Inputs.Secrets[0].ValueFrom.Key = "missing"
	_, err = Read(context.Background(), api, run, []string{"team"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.secrets[0] (token)")
	assert.Contains(t, err.Error(), `has no key "missing"`)

	_, err = Read(context.Background(), api, run, nil)
	require.Error(t, err, "the runners' own credentials are refused outside the allowed namespaces")
	assert.Contains(t, err.Error(), "spec.target.kubeconfigSecretRef")
}

// TestWriteKubeconfig_PrivateFileRemovedByCleanup: the kubeconfig is
// written readable by its user only and removed by the returned cleanup.
func TestWriteKubeconfig_PrivateFileRemovedByCleanup(t *testing.T) {
	run := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "r"}}
	run.Spec.Environment = "dev"
	path, cleanup, err := WriteKubeconfig(nil, t.TempDir(), run, []byte("apiVersion: v1\nkind: Config\n"), nil)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	cleanup()
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

package runner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// TestHandMadeRuns_AreRejectedWithAnEventAndNeverExecuted: a Run no
// Environment controls, one that is not its Environment's active Run, and
// one whose policy was dropped from the Environment's inputs are each
// marked Failed (reason Rejected) with a Warning Event naming why; none
// reaches the engine (no namespace, nothing in the backend), and the
// Environment's own Run then runs.
func TestHandMadeRuns_AreRejectedWithAnEventAndNeverExecuted(t *testing.T) {
	f := newFixture(t, "rt-forged")
	ctx := context.Background()
	// The Environment's own Run, held back until the forged ones are judged.
	own := f.run("forged-1", "forged", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`)
	own.Spec.Policy = v1alpha1.Policy{Packs: []string{"kubernetes"}, Settings: &apiextensionsv1.JSON{Raw: []byte(`{"levels":{"dev":"advisory"}}`)}}
	f.create(own)

	orphan := f.run("orphan-1", "forged", v1alpha1.OpUp, `{"Data":{"color":"red"}}`)
	require.NoError(t, kube.Create(ctx, orphan))
	second := f.run("forged-2", "forged", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`)
	second.Spec.Policy, second.Spec.Revision = own.Spec.Policy, own.Spec.Revision
	second.OwnerReferences = own.OwnerReferences
	require.NoError(t, kube.Create(ctx, second))
	// The active Run of another Environment, its policy dropped after the
	// operator computed its revision (a Run made under the name the
	// operator was about to use).
	tampered := f.run("tampered-1", "tampered", v1alpha1.OpUp, `{"Data":{"color":"red"}}`)
	tampered.Spec.Policy = own.Spec.Policy
	env := &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "tampered", Namespace: f.ns},
		Spec: v1alpha1.EnvironmentSpec{Inputs: *tampered.Spec.Inputs.DeepCopy()}}
	require.NoError(t, kube.Create(ctx, env))
	f.ask(env, tampered)
	tampered.Spec.Policy = v1alpha1.Policy{}
	require.NoError(t, controllerutil.SetControllerReference(env, tampered, kube.Scheme()))
	require.NoError(t, kube.Create(ctx, tampered))

	f.start("runner-forged")
	for name, why := range map[string]string{
		"orphan-1":   "no controller Environment",
		"forged-2":   "not Environment forged's active run",
		"tampered-1": "the inputs were changed",
	} {
		got := f.finished(name)
		assert.Equal(t, v1alpha1.RunFailed, got.Status.Phase, name)
		assert.Equal(t, v1alpha1.ReasonRejected, got.Status.Reason, name)
		assert.Contains(t, got.Status.Message, why, name)
		assert.Empty(t, got.Status.Runner, "%s: never claimed", name)
		assert.Zero(t, got.Status.Attempts, name)
		evs := f.waitEvent(name, v1alpha1.ReasonRejected)
		i := slices.IndexFunc(evs, func(e eventsv1.Event) bool { return e.Reason == v1alpha1.ReasonRejected })
		assert.Equal(t, corev1.EventTypeWarning, evs[i].Type, name)
		assert.Contains(t, evs[i].Note, why, name)
		assert.Zero(t, countReason(evs, "Claimed"), name)
	}
	got := f.succeeded("forged-1")
	assert.Equal(t, "fleettest/rt-forged.forged", got.Status.Stack)
	cm, err := configMap(t, "forged")
	require.NoError(t, err)
	assert.Equal(t, "blue", cm.Data["color"], "only the Environment's own Run applied")
	_, err = cluster.Client.CoreV1().Namespaces().Get(ctx, "ft-tampered", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the tampered Run applied nothing: %v", err)
}

// TestTenantKubeconfig_FilesAndCommandsAreRefusedBeforeAnythingRuns: a
// target kubeconfig with exec (a command that would leave a file) or a
// tokenFile (the runner's service account token, sent to a server of the
// tenant's choosing), a Run without a kubeconfig in a namespace the runner
// does not allow, and an envFromSecret that sets PULUMI_HOME all fail with
// InvalidSpec naming the field, and nothing runs.
func TestTenantKubeconfig_FilesAndCommandsAreRefusedBeforeAnythingRuns(t *testing.T) {
	f := newFixture(t, "rt-tenant")
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "exec-ran")
	head := "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
		"clusters: [{name: k, cluster: {server: '" + cluster.Server + "', insecure-skip-tls-verify: true}}]\n"
	require.NoError(t, kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "targets", Namespace: f.ns}, StringData: map[string]string{
		"exec":      head + "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: touch, args: ['" + marker + "']}}}]\n",
		"tokenFile": head + "users: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]\n",
	}}))
	require.NoError(t, kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "engine-env", Namespace: f.ns},
		StringData: map[string]string{"AWS_REGION": "eu-west-1", "PULUMI_HOME": "/tmp/tenant-plugins"}}))
	cases := map[string]struct {
		mutate func(*v1alpha1.Run)
		want   string
	}{
		"tenant-exec": {func(r *v1alpha1.Run) {
			r.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "targets", Key: "exec"}
		}, `users["u"].user.exec`},
		"tenant-tokenfile": {func(r *v1alpha1.Run) {
			r.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "targets", Key: "tokenFile"}
		}, `users["u"].user.tokenFile`},
		"tenant-own": {func(*v1alpha1.Run) {}, "--allow-runner-credentials=rt-tenant"},
		"tenant-env": {func(r *v1alpha1.Run) {
			r.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "targets", Key: "exec"}
			r.Spec.Backend.EnvFromSecret = "engine-env"
		}, "PULUMI_HOME"},
	}
	for env, tc := range cases {
		run := f.run(env+"-1", env, v1alpha1.OpUp, `{"Data":{"a":"b"}}`)
		tc.mutate(run)
		f.create(run)
	}
	// This runner allows no namespace its own credentials.
	f.start("runner-tenant", func(o *Options) { o.AllowRunnerCredentials = []string{"platform"} })
	for env, tc := range cases {
		got := f.finished(env + "-1")
		assert.Equal(t, v1alpha1.RunFailed, got.Status.Phase, env)
		assert.Equal(t, v1alpha1.ReasonInvalidSpec, got.Status.Reason, env)
		assert.Contains(t, got.Status.Message, tc.want, env)
		assert.NotContains(t, got.Status.Message, "/tmp/tenant-plugins", "%s: no value of the Secret", env)
		_, err := cluster.Client.CoreV1().Namespaces().Get(ctx, "ft-"+env, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%s: nothing applied: %v", env, err)
	}
	assert.Contains(t, f.finished("tenant-env-1").Status.Message, "spec.backend.envFromSecret")
	assert.Contains(t, f.finished("tenant-exec-1").Status.Message, "spec.target.kubeconfigSecretRef")
	_, err := os.Stat(marker)
	assert.ErrorIs(t, err, os.ErrNotExist, "the kubeconfig's exec command never ran")
	entries, err := os.ReadDir(f.state)
	require.NoError(t, err)
	assert.Empty(t, entries, "the backend is untouched")
}

// TestLegacyStack_AnEnvironmentKeepsTheStackItRecorded: a Run whose
// Environment recorded its stack before stacks were per namespace
// ("<project>/<name>") runs on that stack, never on a second copy; a Run
// naming a stack that is neither is refused, naming spec.stack.
func TestLegacyStack_AnEnvironmentKeepsTheStackItRecorded(t *testing.T) {
	f := newFixture(t, "rt-legacy")
	f.start("runner-legacy")
	run := f.run("legacy-1", "legacy", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`)
	run.Spec.Stack = "fleettest/legacy"
	f.create(run)
	got := f.succeeded("legacy-1")
	assert.Equal(t, "fleettest/legacy", got.Status.Stack)
	_, err := os.Stat(filepath.Join(f.state, ".pulumi", "stacks", "fleettest", "legacy.json"))
	assert.NoError(t, err, "the recorded stack was updated")
	_, err = os.Stat(filepath.Join(f.state, ".pulumi", "stacks", "fleettest", "rt-legacy.legacy.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no second copy")

	other := f.run("legacy-2", "legacy", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`)
	other.Spec.Stack = "fleettest/someone-else"
	f.create(other)
	got = f.finished("legacy-2")
	assert.Equal(t, v1alpha1.ReasonInvalidSpec, got.Status.Reason, statusJSON(got))
	assert.Contains(t, got.Status.Message, "spec.stack")
}

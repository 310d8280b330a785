package operator

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// kubeconfigHead is a kubeconfig without users; inlineKubeconfig adds one
// with an inline token (what a tenant's target Secret must hold).
const (
	kubeconfigHead = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
		"clusters: [{name: k, cluster: {server: 'https://k.example'}}]\n"
	inlineKubeconfig = kubeconfigHead + "users: [{name: u, user: {token: abc}}]\n"
)

// TestTenancy_RefusedInputsStallNamingTheFieldAndCreateNoRun: with no
// namespace allowed the runners' credentials, an Environment without a
// target kubeconfig, one whose kubeconfig runs a command, and one whose
// envFromSecret sets an engine variable are each InvalidSpec and Stalled,
// naming the field (and the flag, the kubeconfig entry, the key); no Run
// is created. Fixing the Secret and retrying creates the Run.
func TestTenancy_RefusedInputsStallNamingTheFieldAndCreateNoRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry, AllowRunnerCredentials: []string{"platform"}})
	const kc = kubeconfigHead
	require.NoError(t, h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "target", Namespace: h.ns}, StringData: map[string]string{
		"exec":   kc + "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: sh}}}]\n",
		"inline": kc + "users: [{name: u, user: {token: abc}}]\n",
	}}))
	require.NoError(t, h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "engine-env", Namespace: h.ns},
		StringData: map[string]string{"AWS_REGION": "x", "SLIPWAY_CACHE_DIR": "/tmp/mine"}}))

	h.create(h.newEnv("own", ""))
	exec := h.newEnv("exec", "")
	exec.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "target", Key: "exec"}
	h.create(exec)
	vars := h.newEnv("vars", "")
	vars.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "target", Key: "inline"}
	vars.Spec.Backend.EnvFromSecret = "engine-env"
	h.create(vars)

	for name, want := range map[string][]string{
		"own":  {"spec.target.kubeconfigSecretRef", "--allow-runner-credentials=" + h.ns},
		"exec": {"spec.target.kubeconfigSecretRef", `users["u"].user.exec`},
		"vars": {"spec.backend.envFromSecret", "SLIPWAY_CACHE_DIR"},
	} {
		env := h.waitEnv(name, hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec), "Stalled")
		msg := cond(env, v1alpha1.ConditionReady).Message
		for _, w := range want {
			assert.Contains(t, msg, w, name)
		}
		assert.NotContains(t, msg, "/tmp/mine", "%s: a key, never a value", name)
		h.poke(name)
		assert.Empty(t, h.runs(name), name)
	}

	// The Secret fixed, a retry creates the up.
	require.NoError(t, h.c.Update(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "engine-env", Namespace: h.ns},
		StringData: map[string]string{"AWS_REGION": "x"}}))
	h.update("vars", func(e *v1alpha1.Environment) {
		metav1.SetMetaDataAnnotation(&e.ObjectMeta, v1alpha1.RetryAnnotation, "1")
	})
	run := h.waitRun("vars-1")
	assert.Equal(t, "tinyproj/"+h.ns+".vars", run.Spec.Stack)
}

// TestLegacyStack_KeptWhenRecorded: an Environment whose status.stack
// holds the stack of an earlier version ("<project>/<name>", shared by
// every namespace) keeps it for its next up and its destroy: never a
// second copy.
func TestLegacyStack_KeptWhenRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	h.create(h.newEnv("old", `{"replicas":1}`))
	h.waitRun("old-1")
	h.finish("old-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", func(s *v1alpha1.RunStatus) { s.Stack = "tinyproj/old" })
	h.waitEnv("old", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	h.update("old", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":2}`) })
	run := h.waitRun("old-2")
	assert.Equal(t, "tinyproj/old", run.Spec.Stack, "the recorded stack is kept")
	assert.Equal(t, "tinyproj/old", h.env("old").Status.Stack)
	h.finish("old-2", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("old", func(e *v1alpha1.Environment) bool { return e.Status.ActiveRun == "" }, "folded")
	require.NoError(t, h.c.Delete(h.ctx(), h.env("old")))
	run = h.waitRun("old-3")
	assert.Equal(t, v1alpha1.OpDestroy, run.Spec.Operation)
	assert.Equal(t, "tinyproj/old", run.Spec.Stack)

	// A new Environment gets the per-namespace stack.
	h.create(h.newEnv("new", ""))
	assert.True(t, strings.HasSuffix(h.waitRun("new-1").Spec.Stack, "/"+h.ns+".new"))
}

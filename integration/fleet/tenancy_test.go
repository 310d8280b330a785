package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks/web"
)

// TestTenancy: tenants (namespaces) sharing one backend and one cluster
// never touch each other.
func TestTenancy(t *testing.T) {
	t.Run("TwinsInTwoNamespacesDeleteOneOtherStaysReady", testTwins)
	t.Run("RefusedBeforeAnythingRuns", testTenantRefusals)
}

func getEnvIn(ctx context.Context, ns, name string) (*v1alpha1.Environment, error) {
	env := &v1alpha1.Environment{}
	return env, fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, env)
}

// waitReadyIn waits until the Environment ns/name is Ready at its generation.
func waitReadyIn(t *testing.T, ns, name string, timeout time.Duration) *v1alpha1.Environment {
	t.Helper()
	var env *v1alpha1.Environment
	eventually(t, timeout, ns+"/"+name+" Ready", func(ctx context.Context) (bool, string, error) {
		var err error
		if env, err = getEnvIn(ctx, ns, name); err != nil {
			return false, "", err
		}
		return isTrue(env, v1alpha1.ConditionReady), describe(env), nil
	})
	return env
}

// testTwins: Environment "twin" in team-a and in team-b, one backend, one
// target cluster: both Ready on their own stacks with their own objects
// side by side; deleting team-a's destroys its stack and objects, releases
// its finalizer, and team-b's stays Ready with every object.
func testTwins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "twin"
	for _, ns := range []string{"team-a", "team-b"} {
		tenantNamespace(t, ns)
		env := newEnv(name, fmt.Sprintf(`{"App":{"Settings":{"owner":%q}}}`, ns))
		env.Namespace = ns
		require.NoError(t, fx.c.Create(ctx, env))
	}
	a := waitReadyIn(t, "team-a", name, 10*time.Minute)
	b := waitReadyIn(t, "team-b", name, 10*time.Minute)
	assert.Equal(t, web.Project+"/team-a.twin", a.Status.Stack)
	assert.Equal(t, web.Project+"/team-b.twin", b.Status.Stack)
	require.NotEqual(t, targetNS("team-a", name), targetNS("team-b", name))
	checkObjectsIn(ctx, t, "team-a", name, map[string]string{"owner": "team-a"}, 1)
	checkObjectsIn(ctx, t, "team-b", name, map[string]string{"owner": "team-b"}, 1)
	for _, ns := range []string{"team-a", "team-b"} {
		has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(ns, name))
		require.NoError(t, err)
		assert.True(t, has, "%s's stack", ns)
	}

	require.NoError(t, fx.c.Delete(ctx, a))
	eventually(t, 5*time.Minute, "team-a's twin destroyed and its finalizer released", func(ctx context.Context) (bool, string, error) {
		env, err := getEnvIn(ctx, "team-a", name)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "", err
		}
		return false, describe(env), nil
	})
	checkDestroyedIn(ctx, t, "team-a", name)

	b, err := getEnvIn(ctx, "team-b", name)
	require.NoError(t, err)
	assert.True(t, isTrue(b, v1alpha1.ConditionReady), "team-b's twin stays Ready: %s", describe(b))
	assert.Equal(t, b.Status.Revision, b.Status.LastAppliedRevision)
	checkObjectsIn(ctx, t, "team-b", name, map[string]string{"owner": "team-b"}, 1)
	has, err := fx.hasCheckpoint(ctx, web.Project, stackOf("team-b", name))
	require.NoError(t, err)
	assert.True(t, has, "team-b's stack stays")
	// A drift check of team-b's stack finds its objects as it left them.
	for _, r := range runsIn(ctx, t, "team-b", name) {
		assert.NotEqual(t, v1alpha1.OpDestroy, r.Spec.Operation, "nothing destroyed team-b's twin")
	}
}

// runsIn lists the Runs of Environment ns/name.
func runsIn(ctx context.Context, t *testing.T, ns, name string) []v1alpha1.Run {
	t.Helper()
	var l v1alpha1.RunList
	require.NoError(t, fx.c.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{"slipway.dev/environment": name}))
	return l.Items
}

// testTenantRefusals: a hand-made Run (no Environment controls it, or it
// is not its Environment's active Run) is rejected by the runners with a
// Warning Event and never executed; an Environment without a target
// kubeconfig (no namespace is allowed the runners' credentials here), with
// a kubeconfig whose token is a file of the runner's, or with an engine
// variable in envFromSecret stalls naming the field, and no Run is made.
func testTenantRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ns = "team-c"
	tenantNamespace(t, ns)
	env := newEnv("owned", `{"App":{"Settings":{"color":"blue"}}}`)
	env.Namespace = ns
	require.NoError(t, fx.c.Create(ctx, env))
	env = waitReadyIn(t, ns, "owned", 10*time.Minute)
	runs := runsIn(ctx, t, ns, "owned")
	require.Len(t, runs, 1)
	own := runs[0]

	// Its inputs with another colour and no Environment; and its own spec
	// under its Environment, but not its active Run.
	orphan := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: "owned-by-hand", Namespace: ns}, Spec: *own.Spec.DeepCopy()}
	orphan.Spec.Params.Raw = []byte(`{"App":{"Settings":{"color":"evil"}}}`)
	require.NoError(t, fx.c.Create(ctx, orphan))
	second := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: "owned-second", Namespace: ns, OwnerReferences: own.OwnerReferences},
		Spec: *own.Spec.DeepCopy()}
	require.NoError(t, fx.c.Create(ctx, second))
	for run, why := range map[*v1alpha1.Run]string{orphan: "no controller Environment", second: "active run"} {
		eventually(t, 2*time.Minute, run.Name+" rejected", func(ctx context.Context) (bool, string, error) {
			err := fx.c.Get(ctx, client.ObjectKeyFromObject(run), run)
			return err == nil && run.Status.Phase.Finished(), string(run.Status.Phase), err
		})
		assert.Equal(t, v1alpha1.RunFailed, run.Status.Phase, run.Name)
		assert.Equal(t, v1alpha1.ReasonRejected, run.Status.Reason, run.Name)
		assert.Contains(t, run.Status.Message, why, run.Name)
		assert.Zero(t, run.Status.Attempts, "%s: never claimed", run.Name)
		// The Event is sent after the status is written.
		eventually(t, time.Minute, run.Name+"'s Rejected Event", func(ctx context.Context) (bool, string, error) {
			reasons := eventReasonsIn(ctx, t, ns, "Run", run.Name)
			return slices.Contains(reasons, v1alpha1.ReasonRejected), fmt.Sprint(reasons), nil
		})
		assert.NotContains(t, eventReasonsIn(ctx, t, ns, "Run", run.Name), "Claimed", run.Name)
	}
	checkObjectsIn(ctx, t, ns, "owned", map[string]string{"color": "blue"}, 1)

	require.NoError(t, fx.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "refused", Namespace: ns}, StringData: map[string]string{
		"kubeconfig": "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
			"clusters: [{name: k, cluster: {server: 'https://attacker.example'}}]\n" +
			"users: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]\n",
		"PULUMI_HOME": "/tmp/plugins-of-mine",
	}}))
	own1 := newEnv("no-target", `{}`)
	own1.Namespace, own1.Spec.Target.KubeconfigSecretRef = ns, nil
	tokenFile := newEnv("token-file", `{}`)
	tokenFile.Namespace, tokenFile.Spec.Target.KubeconfigSecretRef = ns, &v1alpha1.SecretKeyRef{Name: "refused", Key: "kubeconfig"}
	vars := newEnv("engine-vars", `{}`)
	vars.Namespace, vars.Spec.Backend.EnvFromSecret = ns, "refused"
	want := map[string][]string{
		"no-target":   {"spec.target.kubeconfigSecretRef", "--allow-runner-credentials=" + ns},
		"token-file":  {"spec.target.kubeconfigSecretRef", `users["u"].user.tokenFile`},
		"engine-vars": {"spec.backend.envFromSecret", "PULUMI_HOME"},
	}
	for _, e := range []*v1alpha1.Environment{own1, tokenFile, vars} {
		require.NoError(t, fx.c.Create(ctx, e))
	}
	for name, parts := range want {
		var got *v1alpha1.Environment
		eventually(t, 2*time.Minute, name+" Stalled", func(ctx context.Context) (bool, string, error) {
			var err error
			if got, err = getEnvIn(ctx, ns, name); err != nil {
				return false, "", err
			}
			return isTrue(got, v1alpha1.ConditionStalled), describe(got), nil
		})
		c := condition(got, v1alpha1.ConditionReady)
		assert.Equal(t, v1alpha1.ReasonInvalidSpec, c.Reason, name)
		for _, p := range parts {
			assert.Contains(t, c.Message, p, name)
		}
		assert.NotContains(t, c.Message, "/tmp/plugins-of-mine", "%s: keys, never values", name)
		assert.Empty(t, runsIn(ctx, t, ns, name), "%s: no Run", name)
	}

	// Clean up: delete the Environments (owned's stack is destroyed).
	require.NoError(t, fx.c.DeleteAllOf(ctx, &v1alpha1.Environment{}, client.InNamespace(ns)))
	eventually(t, 5*time.Minute, "team-c's Environments gone", func(ctx context.Context) (bool, string, error) {
		var l v1alpha1.EnvironmentList
		if err := fx.c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return false, "", err
		}
		names := []string{}
		for i := range l.Items {
			names = append(names, describe(&l.Items[i]))
		}
		return len(l.Items) == 0, fmt.Sprint(names), nil
	})
	checkDestroyedIn(ctx, t, ns, "owned")
}

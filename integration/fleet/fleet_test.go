package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// newEnv is a web Environment of the fleet's namespace, with its state in
// the S3 backend, its secrets and target cluster from Secrets.
func newEnv(name, params string) *v1alpha1.Environment {
	return &v1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: envNS},
		Spec: v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{
			Definition: "web",
			Kind:       "dev",
			Params:     &apiextensionsv1.JSON{Raw: []byte(params)},
			Secrets:    []v1alpha1.SecretValue{{Name: "TOKEN", ValueFrom: v1alpha1.SecretKeyRef{Name: "app", Key: "token"}}},
			Target:     v1alpha1.Target{KubeconfigSecretRef: &v1alpha1.SecretKeyRef{Name: "target", Key: "kubeconfig"}},
			Backend: v1alpha1.Backend{URL: fx.backendURL, EnvFromSecret: "state-credentials",
				PassphraseSecretRef: &v1alpha1.SecretKeyRef{Name: "state-passphrase", Key: "passphrase"}},
		}},
	}
}

// eventually polls check until it reports done, failing the test with the
// last state it described when timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last := ""
	for {
		done, state, err := check(ctx)
		if err == nil && done {
			return
		}
		if err != nil {
			state = state + " (error: " + err.Error() + ")"
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s; last state: %s", what, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func getEnv(ctx context.Context, name string) (*v1alpha1.Environment, error) {
	env := &v1alpha1.Environment{}
	return env, fx.c.Get(ctx, client.ObjectKey{Namespace: envNS, Name: name}, env)
}

// describe is a one-line summary of an Environment's status for failures.
func describe(env *v1alpha1.Environment) string {
	var parts []string
	for _, c := range env.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s: %.120s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("%s: run=%q runs=%d failures=%d %s", env.Name, env.Status.ActiveRun, env.Status.RunCount, env.Status.Failures, strings.Join(parts, " "))
}

func condition(env *v1alpha1.Environment, t string) *metav1.Condition {
	return meta.FindStatusCondition(env.Status.Conditions, t)
}

func isTrue(env *v1alpha1.Environment, t string) bool {
	c := condition(env, t)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == env.Generation
}

// waitCondition waits until the Environment's condition t is status.
func waitCondition(t *testing.T, name, typ string, status metav1.ConditionStatus, timeout time.Duration) *v1alpha1.Environment {
	t.Helper()
	var env *v1alpha1.Environment
	eventually(t, timeout, name+" "+typ+"="+string(status), func(ctx context.Context) (bool, string, error) {
		var err error
		if env, err = getEnv(ctx, name); err != nil {
			return false, "", err
		}
		c := condition(env, typ)
		return c != nil && c.Status == status && c.ObservedGeneration == env.Generation, describe(env), nil
	})
	return env
}

// waitGone waits until the Environment no longer exists.
func waitGone(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, name+" deleted", func(ctx context.Context) (bool, string, error) {
		env, err := getEnv(ctx, name)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "", err
		}
		return false, describe(env), nil
	})
}

// runsOf lists an Environment's Runs, oldest first.
func runsOf(ctx context.Context, t *testing.T, name string) []v1alpha1.Run {
	t.Helper()
	var l v1alpha1.RunList
	require.NoError(t, fx.c.List(ctx, &l, client.InNamespace(envNS), client.MatchingLabels{"slipway.dev/environment": name}))
	slices.SortFunc(l.Items, func(a, b v1alpha1.Run) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return l.Items
}

// eventReasons lists the reasons of the Events about an object.
func eventReasons(ctx context.Context, t *testing.T, kind, name string) []string {
	t.Helper()
	return eventReasonsIn(ctx, t, envNS, kind, name)
}

// eventReasonsIn is eventReasons in namespace ns.
func eventReasonsIn(ctx context.Context, t *testing.T, ns, kind, name string) []string {
	t.Helper()
	var l corev1.EventList
	require.NoError(t, fx.c.List(ctx, &l, client.InNamespace(ns)))
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// checkObjects checks an Environment's objects through client-go: its
// namespace, its ConfigMap's settings, its Secret (from the Environment's
// secret reference) and its Deployment's replicas.
func checkObjects(ctx context.Context, t *testing.T, name string, settings map[string]string, replicas int32) {
	t.Helper()
	checkObjectsIn(ctx, t, envNS, name, settings, replicas)
}

// checkObjectsIn is checkObjects for an Environment of namespace envNS.
func checkObjectsIn(ctx context.Context, t *testing.T, envNS, name string, settings map[string]string, replicas int32) {
	t.Helper()
	ns := targetNS(envNS, name)
	_, err := fx.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err, "namespace of %s", name)
	cm, err := fx.kube.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err, "ConfigMap of %s", name)
	for k, v := range settings {
		assert.Equal(t, v, cm.Data[k], "%s: ConfigMap key %s", name, k)
	}
	sec, err := fx.kube.CoreV1().Secrets(ns).Get(ctx, "web-secrets", metav1.GetOptions{})
	require.NoError(t, err, "Secret of %s", name)
	assert.Equal(t, appSecret, string(sec.Data["TOKEN"]), "%s: the secret reference reached the program", name)
	var dep appsv1.Deployment
	require.NoError(t, fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &dep), "Deployment of %s", name)
	require.NotNil(t, dep.Spec.Replicas)
	assert.Equal(t, replicas, *dep.Spec.Replicas, "%s: replicas", name)
}

func TestFleet(t *testing.T) {
	t.Run("TwentyEnvironmentsReachReady", testTwenty)
	t.Run("LeaderKilledOtherTakesOver", testLeaderKilled)
	t.Run("RunnerKilledMidUpRunIsReclaimed", testRunnerKilled)
	t.Run("Scenarios", func(t *testing.T) {
		t.Run("DriftDetectedThenRemediated", testDrift)
		t.Run("GitCommitUpdatesEnvironment", testGit)
		t.Run("FailingProgramBacksOffStallsAndRecovers", testStalled)
		t.Run("PolicyBlockedAppliesNothing", testPolicyBlocked)
		t.Run("InvalidSpecNamesTheFieldAndAppliesNothing", testInvalid)
		t.Run("DeleteDestroysAndReleasesFinalizer", testDelete)
		t.Run("TTLExpires", testTTL)
	})
	t.Run("MetricsAndProbes", testMetrics)
	t.Run("SecretsNeverInStatusEventsOrLogs", testSecrets)
	t.Run("EveryEnvironmentDeletedNothingLeft", testAllDeleted)
}

func testTwenty(t *testing.T) {
	ctx := context.Background()
	var names []string
	for i := 1; i <= 20; i++ {
		name := fmt.Sprintf("fleet-%02d", i)
		names = append(names, name)
		require.NoError(t, fx.c.Create(ctx, newEnv(name, fmt.Sprintf(`{"App":{"Settings":{"env":%q}}}`, name))))
	}
	eventually(t, 15*time.Minute, "20 Environments Ready", func(ctx context.Context) (bool, string, error) {
		var l v1alpha1.EnvironmentList
		if err := fx.c.List(ctx, &l, client.InNamespace(envNS)); err != nil {
			return false, "", err
		}
		ready, waiting := 0, []string{}
		for i := range l.Items {
			if slices.Contains(names, l.Items[i].Name) {
				if isTrue(&l.Items[i], v1alpha1.ConditionReady) {
					ready++
				} else {
					waiting = append(waiting, describe(&l.Items[i]))
				}
			}
		}
		return ready == len(names), fmt.Sprintf("%d ready; waiting: %s", ready, strings.Join(waiting, "; ")), nil
	})
	runners := map[string]bool{}
	for _, name := range names {
		env, err := getEnv(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, env.Status.Revision, env.Status.LastAppliedRevision, name)
		assert.Equal(t, web.Project+"/"+stackOf(envNS, name), env.Status.Stack, name)
		assert.Contains(t, env.Finalizers, v1alpha1.Finalizer, name)
		assert.NotEmpty(t, env.Status.Outputs, "%s: outputs", name)
		checkObjects(ctx, t, name, map[string]string{"env": name}, 1)
		runs := runsOf(ctx, t, name)
		require.Len(t, runs, 1, "%s: one up, no duplicate Run", name)
		assert.Equal(t, v1alpha1.OpUp, runs[0].Spec.Operation)
		assert.Equal(t, v1alpha1.RunSucceeded, runs[0].Status.Phase)
		runners[runs[0].Status.Runner] = true
	}
	assert.GreaterOrEqual(t, len(runners), 2, "the work spread over the runners: %v", runners)
}

// leaderOf returns the operator leader's identity.
func leaderOf(ctx context.Context) (string, error) {
	var l coordinationv1.Lease
	if err := fx.c.Get(ctx, client.ObjectKey{Namespace: systemNS, Name: "slipway-operator"}, &l); err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

func testLeaderKilled(t *testing.T) {
	ctx := context.Background()
	leader, err := leaderOf(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(leader, "operator-"), "the leader %q is one of the operators", leader)
	killed := time.Now()
	require.NoError(t, fx.kill9(leader))
	var next string
	eventually(t, leaseDuration+10*retryPeriod+10*time.Second, "a new leader", func(ctx context.Context) (bool, string, error) {
		var err error
		next, err = leaderOf(ctx)
		return err == nil && next != "" && next != leader, "holder " + next, err
	})
	took := time.Since(killed)
	t.Logf("leader %s killed; %s took over after %s (lease duration %s)", leader, next, took.Round(time.Millisecond), leaseDuration)
	assert.Less(t, took, leaseDuration+3*retryPeriod, "the other operator takes over within the lease duration (plus its retry period)")
	// Work continues under the new leader.
	require.NoError(t, fx.c.Create(ctx, newEnv("after-leader", `{}`)))
	waitCondition(t, "after-leader", v1alpha1.ConditionReady, metav1.ConditionTrue, 5*time.Minute)
	checkObjects(ctx, t, "after-leader", nil, 1)
	require.NoError(t, fx.start(ctx, "operator", leader+"-again"))
}

func testRunnerKilled(t *testing.T) {
	ctx := context.Background()
	const name = "runner-killed"
	require.NoError(t, fx.c.Create(ctx, newEnv(name, `{"App":{"Replicas":3}}`)))
	var run v1alpha1.Run
	eventually(t, 5*time.Minute, "the up running with the stack locked", func(ctx context.Context) (bool, string, error) {
		env, err := getEnv(ctx, name)
		if err != nil || env.Status.ActiveRun == "" {
			return false, "no active run", err
		}
		if err := fx.c.Get(ctx, client.ObjectKey{Namespace: envNS, Name: env.Status.ActiveRun}, &run); err != nil {
			return false, "", err
		}
		if run.Status.Phase != v1alpha1.RunRunning {
			return false, "phase " + string(run.Status.Phase), nil
		}
		locks, err := fx.locks(ctx, web.Project, stackOf(envNS, name))
		return len(locks) > 0, fmt.Sprintf("running on %s, %d locks", run.Status.Runner, len(locks)), err
	})
	victim := run.Status.Runner
	require.NoError(t, fx.kill9(victim), "kill -9 %s in the middle of the up", victim)
	eventually(t, 5*time.Minute, "the Run re-claimed and completed", func(ctx context.Context) (bool, string, error) {
		if err := fx.c.Get(ctx, client.ObjectKeyFromObject(&run), &run); err != nil {
			return false, "", err
		}
		return run.Status.Phase.Finished(), fmt.Sprintf("phase %s runner %s attempts %d", run.Status.Phase, run.Status.Runner, run.Status.Attempts), nil
	})
	assert.Equal(t, v1alpha1.RunSucceeded, run.Status.Phase, run.Status.Message)
	assert.GreaterOrEqual(t, run.Status.Attempts, int32(2), "claimed again after the runner died")
	assert.NotEqual(t, victim, run.Status.Runner, "another runner completed it")
	locks, err := fx.locks(ctx, web.Project, stackOf(envNS, name))
	require.NoError(t, err)
	assert.Empty(t, locks, "no backend lock is left")
	waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	checkObjects(ctx, t, name, nil, 3)
	// The next preview of the environment is clean.
	// (A preview Run made by hand runs only as its Environment's, at its
	// current revision.)
	preview := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: name + "-preview", Namespace: envNS,
		Labels: map[string]string{"slipway.dev/environment": name}, OwnerReferences: run.OwnerReferences}, Spec: *run.Spec.DeepCopy()}
	preview.Spec.Operation = v1alpha1.OpPreview
	require.NoError(t, fx.c.Create(ctx, preview))
	eventually(t, 3*time.Minute, "the preview finished", func(ctx context.Context) (bool, string, error) {
		err := fx.c.Get(ctx, client.ObjectKeyFromObject(preview), preview)
		return err == nil && preview.Status.Phase.Finished(), string(preview.Status.Phase), err
	})
	require.Equal(t, v1alpha1.RunSucceeded, preview.Status.Phase, preview.Status.Message)
	assert.Empty(t, preview.Status.Changes, "the preview after recovery is clean")
	assert.Contains(t, preview.Status.Message, "no changes")
	require.NoError(t, fx.c.Delete(ctx, preview))
	require.NoError(t, fx.start(ctx, "runner", victim+"-again"))
}

func testDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "drifty"
	env := newEnv(name, `{"App":{"Settings":{"color":"blue"}}}`)
	env.Spec.Drift = &v1alpha1.DriftCheck{Interval: metav1.Duration{Duration: 3 * time.Second}}
	require.NoError(t, fx.c.Create(ctx, env))
	waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, 8*time.Minute)
	ns := targetNS(envNS, name)
	cm, err := fx.kube.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["color"] = "red"
	_, err = fx.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "someone-by-hand"})
	require.NoError(t, err)

	env = waitCondition(t, name, v1alpha1.ConditionDrifted, metav1.ConditionTrue, 5*time.Minute)
	c := condition(env, v1alpha1.ConditionDrifted)
	assert.Equal(t, v1alpha1.ReasonDriftDetected, c.Reason)
	assert.Contains(t, c.Message, "ConfigMap", "the drifted object is named")
	assert.Contains(t, c.Message, "data", "the drifted property is named")
	cm, err = fx.kube.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "red", cm.Data["color"], "without remediation drift is only reported")

	require.NoError(t, fx.c.Get(ctx, client.ObjectKeyFromObject(env), env))
	env.Spec.Drift.Remediate = true
	require.NoError(t, fx.c.Update(ctx, env))
	env = waitCondition(t, name, v1alpha1.ConditionDrifted, metav1.ConditionFalse, 5*time.Minute)
	// A clean check after the remediation may follow; the remediation itself
	// is recorded in the Events and in the object.
	eventually(t, time.Minute, "the ConfigMap restored", func(ctx context.Context) (bool, string, error) {
		cm, err := fx.kube.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return cm.Data["color"] == "blue", "color " + cm.Data["color"], nil
	})
	reasons := eventReasons(ctx, t, "Environment", name)
	assert.Contains(t, reasons, "DriftDetected")
	assert.Contains(t, reasons, "DriftRemediated")
}

func testStalled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "failing"
	// The program's target cluster does not answer: every up fails when
	// the program's provider reaches for it.
	broken := strings.ReplaceAll(fx.targetKubeconfig, fx.cluster.Server, "https://127.0.0.1:1")
	require.NotEqual(t, fx.targetKubeconfig, broken)
	require.NoError(t, fx.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broken-target", Namespace: envNS},
		StringData: map[string]string{"kubeconfig": broken}}))
	env := newEnv(name, `{}`)
	env.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "broken-target", Key: "kubeconfig"}
	two := int32(2)
	env.Spec.Retry = &v1alpha1.RetryPolicy{Backoff: &metav1.Duration{Duration: 2 * time.Second}, MaxFailures: &two}
	require.NoError(t, fx.c.Create(ctx, env))
	env = waitCondition(t, name, v1alpha1.ConditionStalled, metav1.ConditionTrue, 10*time.Minute)
	assert.Equal(t, int32(2), env.Status.Failures)
	assert.False(t, isTrue(env, v1alpha1.ConditionReady))
	stalled := condition(env, v1alpha1.ConditionStalled)
	assert.Contains(t, stalled.Message, "slipway.dev/retry", "the message says how to retry")
	runs := runsOf(ctx, t, name)
	require.Len(t, runs, 2, "no run after Stalled")
	for _, r := range runs {
		assert.Equal(t, v1alpha1.RunFailed, r.Status.Phase)
		assert.Equal(t, v1alpha1.OpUp, r.Spec.Operation)
	}
	require.NotNil(t, runs[0].Status.CompletionTime)
	gap := runs[1].CreationTimestamp.Sub(runs[0].Status.CompletionTime.Time)
	assert.GreaterOrEqual(t, gap, time.Second, "the second try waited for the back-off (timestamps have 1 s resolution)")
	assert.Contains(t, eventReasons(ctx, t, "Environment", name), "Stalled")

	// A spec fix recovers it.
	require.NoError(t, fx.c.Get(ctx, client.ObjectKeyFromObject(env), env))
	env.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "target", Key: "kubeconfig"}
	require.NoError(t, fx.c.Update(ctx, env))
	env = waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, 8*time.Minute)
	assert.False(t, isTrue(env, v1alpha1.ConditionStalled))
	assert.Zero(t, env.Status.Failures)
	checkObjects(ctx, t, name, nil, 1)
}

func testPolicyBlocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "blocked"
	env := newEnv(name, `{"App":{"Image":"registry.evil.example/app:1.0"}}`)
	env.Spec.Policy = v1alpha1.Policy{Packs: []string{"kubernetes"}, Settings: &apiextensionsv1.JSON{Raw: []byte(`{"levels":{"dev":"mandatory"}}`)}}
	require.NoError(t, fx.c.Create(ctx, env))
	env = waitCondition(t, name, v1alpha1.ConditionPolicyBlocked, metav1.ConditionTrue, 8*time.Minute)
	assert.True(t, isTrue(env, v1alpha1.ConditionStalled), "retrying cannot help: %s", describe(env))
	require.NotNil(t, env.Status.LastRun)
	var run v1alpha1.Run
	require.NoError(t, fx.c.Get(ctx, client.ObjectKey{Namespace: envNS, Name: env.Status.LastRun.Name}, &run))
	assert.Equal(t, v1alpha1.ReasonPolicyBlocked, run.Status.Reason)
	found := slices.ContainsFunc(run.Status.Findings, func(f v1alpha1.Finding) bool { return f.Policy == "image-registry-allowlist" })
	assert.True(t, found, "the blocking finding is in the Run: %+v", run.Status.Findings)
	_, err := fx.kube.CoreV1().Namespaces().Get(ctx, targetNS(envNS, name), metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nothing was applied: %v", err)
}

func testInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, definition, params string
		field, fix               string
	}{
		{name: "invalid-param", definition: "web", params: `{"App":{"Replicaz":2}}`, field: "spec.params", fix: "Replicaz"},
		{name: "invalid-value", definition: "web", params: `{"App":{"Replicas":500}}`, field: "spec.params", fix: "use 1 to 100"},
		{name: "invalid-definition", definition: "nope", params: `{}`, field: "spec.definition", fix: "web"},
	} {
		env := newEnv(tc.name, tc.params)
		env.Spec.Definition = tc.definition
		require.NoError(t, fx.c.Create(ctx, env))
		env = waitCondition(t, tc.name, v1alpha1.ConditionStalled, metav1.ConditionTrue, 2*time.Minute)
		for _, typ := range []string{v1alpha1.ConditionStalled, v1alpha1.ConditionReady} {
			c := condition(env, typ)
			require.NotNil(t, c, typ)
			assert.Equal(t, v1alpha1.ReasonInvalidSpec, c.Reason, "%s %s", tc.name, typ)
			assert.Contains(t, c.Message, tc.field, "%s: the message names the field", tc.name)
			assert.Contains(t, c.Message, tc.fix, "%s: the message says the fix", tc.name)
		}
		assert.Empty(t, runsOf(ctx, t, tc.name), "%s: nothing is applied", tc.name)
		assert.Zero(t, env.Status.RunCount)
	}
	// Fixing the spec makes it Ready.
	env, err := getEnv(ctx, "invalid-param")
	require.NoError(t, err)
	env.Spec.Params = &apiextensionsv1.JSON{Raw: []byte(`{"App":{"Replicas":2}}`)}
	require.NoError(t, fx.c.Update(ctx, env))
	waitCondition(t, "invalid-param", v1alpha1.ConditionReady, metav1.ConditionTrue, 8*time.Minute)
	checkObjects(ctx, t, "invalid-param", nil, 2)
}

func testDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "doomed"
	require.NoError(t, fx.c.Create(ctx, newEnv(name, `{}`)))
	env := waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, 8*time.Minute)
	require.Contains(t, env.Finalizers, v1alpha1.Finalizer)
	has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(envNS, name))
	require.NoError(t, err)
	require.True(t, has, "the stack exists before the delete")
	require.NoError(t, fx.c.Delete(ctx, env))
	waitGone(t, name, 5*time.Minute)
	checkDestroyed(ctx, t, name)
}

// checkDestroyed checks an Environment's resources and stack are gone.
func checkDestroyed(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	checkDestroyedIn(ctx, t, envNS, name)
}

// checkDestroyedIn is checkDestroyed for an Environment of namespace envNS.
func checkDestroyedIn(ctx context.Context, t *testing.T, envNS, name string) {
	t.Helper()
	ns, err := fx.kube.CoreV1().Namespaces().Get(ctx, targetNS(envNS, name), metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err) || ns.DeletionTimestamp != nil, "%s: its namespace is deleted", name)
	_, err = fx.kube.AppsV1().Deployments(targetNS(envNS, name)).Get(ctx, "web", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "%s: its Deployment is deleted: %v", name, err)
	has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(envNS, name))
	require.NoError(t, err)
	assert.False(t, has, "%s: the stack is removed from the backend", name)
	assert.Contains(t, eventReasonsIn(ctx, t, envNS, "Environment", name), "Destroyed")
}

// stackOf is the stack of Environment name in namespace ns.
func stackOf(ns, name string) string { return stacks.StackName(ns, name, false) }

// targetNS is the web program's namespace of Environment name in ns.
func targetNS(ns, name string) string { return "slipway-" + stacks.EnvID(ns, name) }

func testTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "short-lived"
	env := newEnv(name, `{}`)
	env.Spec.TTL = &metav1.Duration{Duration: 45 * time.Second}
	require.NoError(t, fx.c.Create(ctx, env))
	env = waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, 8*time.Minute)
	require.NotNil(t, env.Status.ExpiresAt)
	assert.Equal(t, env.CreationTimestamp.Add(45*time.Second).Unix(), env.Status.ExpiresAt.Unix())
	waitGone(t, name, 8*time.Minute)
	checkDestroyed(ctx, t, name)
	assert.Contains(t, eventReasons(ctx, t, "Environment", name), "Expired")
}

func testMetrics(t *testing.T) {
	leader, err := leaderOf(context.Background())
	require.NoError(t, err)
	fx.mu.Lock()
	procs := make([]*proc, 0, len(fx.procs))
	for _, p := range fx.procs {
		procs = append(procs, p)
	}
	fx.mu.Unlock()
	require.Len(t, procs, 5, "2 operators and 3 runners run")
	for _, p := range procs {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + p.probe + path)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s %s", p.name, path)
		}
		resp, err := http.Get("http://" + p.metrics + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		m := string(body)
		switch {
		case p.role == "runner":
			assert.True(t, strings.Contains(m, `controller_runtime_reconcile_total{controller="run",result="success"}`), "%s serves its reconcile counts", p.name)
		case p.name == leader:
			assert.True(t, strings.Contains(m, `leader_election_master_status{name="slipway-operator"} 1`), "%s reports that it leads", p.name)
			assert.True(t, strings.Contains(m, `controller_runtime_reconcile_total{controller="environment",result="success"}`), "%s serves its reconcile counts", p.name)
		default: // the standby operator: it only tries the Lease
			assert.False(t, strings.Contains(m, `leader_election_master_status{name="slipway-operator"} 1`), "%s does not claim to lead", p.name)
			assert.True(t, strings.Contains(m, `rest_client_requests_total`), "%s serves its API client metrics", p.name)
		}
	}
}

func testSecrets(t *testing.T) {
	ctx := context.Background()
	var dumps []string
	logs, err := filepath.Glob(filepath.Join(fx.dir, "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, logs)
	for _, l := range logs {
		b, err := os.ReadFile(l)
		require.NoError(t, err)
		dumps = append(dumps, filepath.Base(l)+": "+string(b))
	}
	var envs v1alpha1.EnvironmentList
	require.NoError(t, fx.c.List(ctx, &envs))
	var runs v1alpha1.RunList
	require.NoError(t, fx.c.List(ctx, &runs))
	var events corev1.EventList
	require.NoError(t, fx.c.List(ctx, &events))
	require.NotEmpty(t, runs.Items)
	require.NotEmpty(t, events.Items)
	for name, obj := range map[string]any{"environments": envs, "runs": runs, "events": events} {
		b, err := json.Marshal(obj)
		require.NoError(t, err)
		dumps = append(dumps, name+": "+string(b))
	}
	for _, d := range dumps {
		for _, secret := range []string{passphrase, s3SecretKey, appSecret, gitPassword} {
			if strings.Contains(d, secret) {
				i := strings.Index(d, secret)
				t.Errorf("a secret value appears in %.60s... near %q", d, d[max(0, i-80):i])
			}
		}
	}
}

func testAllDeleted(t *testing.T) {
	ctx := context.Background()
	var l v1alpha1.EnvironmentList
	require.NoError(t, fx.c.List(ctx, &l, client.InNamespace(envNS)))
	require.NotEmpty(t, l.Items)
	require.NoError(t, fx.c.DeleteAllOf(ctx, &v1alpha1.Environment{}, client.InNamespace(envNS)))
	eventually(t, 15*time.Minute, "every Environment destroyed", func(ctx context.Context) (bool, string, error) {
		var left v1alpha1.EnvironmentList
		if err := fx.c.List(ctx, &left, client.InNamespace(envNS)); err != nil {
			return false, "", err
		}
		var names []string
		for i := range left.Items {
			names = append(names, describe(&left.Items[i]))
		}
		return len(left.Items) == 0, strings.Join(names, "; "), nil
	})
	for _, e := range l.Items {
		has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(envNS, e.Name))
		require.NoError(t, err)
		assert.False(t, has, "%s: stack removed", e.Name)
		locks, err := fx.locks(ctx, web.Project, stackOf(envNS, e.Name))
		require.NoError(t, err)
		assert.Empty(t, locks, "%s: no lock left", e.Name)
	}
}

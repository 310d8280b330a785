package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks/web"
)

// tenantNamespace creates a namespace holding copies of the Secrets an
// Environment needs (backend credentials, passphrase, target cluster, app
// secret), deleted at the end unless the test deleted it.
func tenantNamespace(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, fx.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	t.Cleanup(func() {
		err := fx.c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		assert.NoError(t, client.IgnoreNotFound(err), "deleting namespace %s", ns)
	})
	for name, data := range map[string]map[string]string{
		"state-credentials": fx.s3Env,
		"state-passphrase":  {"passphrase": passphrase},
		"target":            {"kubeconfig": fx.targetKubeconfig},
		"app":               {"token": appSecret},
	} {
		require.NoError(t, fx.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}))
	}
}

// envIn is newEnv in another namespace.
func envIn(ns, name string) *v1alpha1.Environment {
	env := newEnv(name, `{}`)
	env.Namespace = ns
	return env
}

// An Environment deleted with deletionPolicy orphan goes without a
// destroy: its stack stays in the backend and its objects in the cluster,
// and an Event says where. Set back to destroy (a new Environment of the
// same name adopts the stack), deletion destroys it.
func TestLifecycle_OrphanKeepsTheStackAndTheObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ns, name = "lc-orphan", "lc-keep"
	tenantNamespace(t, ns)
	env := envIn(ns, name)
	env.Spec.DeletionPolicy = v1alpha1.DeletionOrphan
	require.NoError(t, fx.c.Create(ctx, env))
	env = waitReadyIn(t, ns, name, 8*time.Minute)
	require.NoError(t, fx.c.Delete(ctx, env))
	eventually(t, time.Minute, name+" deleted", func(ctx context.Context) (bool, string, error) {
		err := fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.Environment{})
		return apierrors.IsNotFound(err), "still there", client.IgnoreNotFound(err)
	})
	var runs v1alpha1.RunList
	require.NoError(t, fx.c.List(ctx, &runs, client.InNamespace(ns)))
	for _, r := range runs.Items {
		assert.NotEqual(t, v1alpha1.OpDestroy, r.Spec.Operation, "no destroy Run: %s", r.Name)
	}
	has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(ns, name))
	require.NoError(t, err)
	assert.True(t, has, "the stack stays in the backend")
	var dep appsv1.Deployment
	require.NoError(t, fx.c.Get(ctx, client.ObjectKey{Namespace: targetNS(ns, name), Name: "web"}, &dep), "the objects stay in the cluster")
	var events corev1.EventList
	require.NoError(t, fx.c.List(ctx, &events, client.InNamespace(ns)))
	found := false
	for _, e := range events.Items {
		if e.InvolvedObject.Name == name && e.Reason == "Orphaned" {
			found = true
			assert.Contains(t, e.Message, web.Project+"/"+stackOf(ns, name))
			assert.Contains(t, e.Message, "s3://"+bucket)
		}
	}
	assert.True(t, found, "an Orphaned Event")

	// Clean up through the fleet: adopt the stack again, then destroy it.
	again := envIn(ns, name)
	again.Spec.DeletionPolicy = v1alpha1.DeletionDestroy
	require.NoError(t, fx.c.Create(ctx, again))
	again = waitReadyIn(t, ns, name, 8*time.Minute)
	require.NoError(t, fx.c.Delete(ctx, again))
	eventually(t, 5*time.Minute, name+" destroyed", func(ctx context.Context) (bool, string, error) {
		has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(ns, name))
		return !has, "the stack is still there", err
	})
}

// Deleting a namespace that holds an Environment and its Secrets
// completes: the Secrets wait for the destroy (the Environment's
// finalizer), Kubernetes refuses the destroy Run in the terminating
// namespace, the operator destroys the stack itself, and the namespace
// goes with the stack and the program's objects.
func TestLifecycle_NamespaceDeletionDestroysTheStackAndTerminates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ns, name = "lc-tenant", "lc-tenant-app"
	tenantNamespace(t, ns)
	require.NoError(t, fx.c.Create(ctx, envIn(ns, name)))
	env := waitReadyIn(t, ns, name, 8*time.Minute)
	assert.ElementsMatch(t, []string{"app", "state-credentials", "state-passphrase", "target"}, env.Status.ProtectedSecrets)
	var sec corev1.Secret
	require.NoError(t, fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "state-passphrase"}, &sec))
	assert.Contains(t, sec.Finalizers, v1alpha1.SecretFinalizerPrefix+name)
	has, err := fx.hasCheckpoint(ctx, web.Project, stackOf(ns, name))
	require.NoError(t, err)
	require.True(t, has, "the stack exists before the namespace is deleted")

	require.NoError(t, fx.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	eventually(t, 6*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, string, error) {
		var n corev1.Namespace
		err := fx.c.Get(ctx, client.ObjectKey{Name: ns}, &n)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		state := "namespace " + string(n.Status.Phase)
		for _, c := range n.Status.Conditions {
			if c.Status == corev1.ConditionTrue {
				state += "; " + c.Message
			}
		}
		var e v1alpha1.Environment
		if fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &e) == nil {
			state += "; " + describe(&e)
		}
		return false, state, err
	})
	has, err = fx.hasCheckpoint(ctx, web.Project, stackOf(ns, name))
	require.NoError(t, err)
	assert.False(t, has, "the stack is destroyed and removed from the backend")
	_, err = fx.kube.AppsV1().Deployments(targetNS(ns, name)).Get(ctx, "web", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the program's Deployment is deleted: %v", err)
	locks, err := fx.locks(ctx, web.Project, stackOf(ns, name))
	require.NoError(t, err)
	assert.Empty(t, locks, "no lock left")
}

// A Run whose program hangs past spec.runTimeout (5s) is stopped by its
// runner and fails with reason Timeout; the Environment backs off as
// after any failure (Failures, nextAttempt) and, at retry.maxFailures,
// stalls instead of holding a runner's slot forever.
func TestLifecycle_RunTimeoutFailsTheRunAndBacksOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ns, name = "lc-timeout", "lc-hung"
	tenantNamespace(t, ns)
	env := envIn(ns, name)
	env.Spec.Definition = "sleep"
	env.Spec.Params.Raw = []byte(`{"Seconds":600}`)
	env.Spec.Secrets = nil
	env.Spec.RunTimeout = &metav1.Duration{Duration: 5 * time.Second}
	env.Spec.Retry = &v1alpha1.RetryPolicy{Backoff: &metav1.Duration{Duration: 2 * time.Second}, MaxFailures: ptrInt32(2)}
	require.NoError(t, fx.c.Create(ctx, env))

	var first v1alpha1.Run
	eventually(t, 5*time.Minute, name+"-1 failed", func(ctx context.Context) (bool, string, error) {
		if err := fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-1"}, &first); err != nil {
			return false, "", client.IgnoreNotFound(err)
		}
		return first.Status.Phase.Finished(), string(first.Status.Phase) + " " + first.Status.Message, nil
	})
	assert.Equal(t, v1alpha1.RunFailed, first.Status.Phase)
	assert.Equal(t, v1alpha1.ReasonTimeout, first.Status.Reason, first.Status.Message)
	assert.Contains(t, first.Status.Message, "spec.timeout 5s")
	require.NotNil(t, first.Status.StartTime)
	require.NotNil(t, first.Status.CompletionTime)
	assert.Less(t, first.Status.CompletionTime.Sub(first.Status.StartTime.Time), 2*time.Minute, "stopped soon after the timeout, not after the program's 600s")

	got := &v1alpha1.Environment{}
	eventually(t, 5*time.Minute, name+" Stalled after 2 timeouts", func(ctx context.Context) (bool, string, error) {
		if err := fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, got); err != nil {
			return false, "", err
		}
		return isTrue(got, v1alpha1.ConditionStalled), describe(got), nil
	})
	assert.EqualValues(t, 2, got.Status.Failures, "the second Run came after the back-off")
	assert.Equal(t, v1alpha1.ReasonTimeout, got.Status.LastRun.Reason)
	assert.Equal(t, int64(2), got.Status.RunCount)

	// Fixed (the program no longer hangs, and the timeout is one the
	// destroy can finish in): the new generation clears Stalled and the
	// up succeeds.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, got); err != nil {
			return err
		}
		got.Spec.Params.Raw = []byte(`{"Seconds":0}`)
		got.Spec.RunTimeout = &metav1.Duration{Duration: 10 * time.Minute}
		return fx.c.Update(ctx, got)
	}))
	got = waitReadyIn(t, ns, name, 8*time.Minute)
	require.NoError(t, fx.c.Delete(ctx, got))
	eventually(t, 5*time.Minute, name+" destroyed", func(ctx context.Context) (bool, string, error) {
		err := fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.Environment{})
		return apierrors.IsNotFound(err), "still there", client.IgnoreNotFound(err)
	})
}

func ptrInt32(v int32) *int32 { return &v }

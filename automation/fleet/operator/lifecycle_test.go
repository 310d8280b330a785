package operator

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks"
)

// ready makes an Environment Ready: its first up succeeds with its stack.
func (h *harness) ready(name string) {
	h.t.Helper()
	h.waitRun(name + "-1")
	h.finish(name+"-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", func(s *v1alpha1.RunStatus) { s.Stack = "tinyproj/" + name })
	h.waitEnv(name, hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
}

// gone waits until the Environment no longer exists.
func (h *harness) gone(name string) {
	h.t.Helper()
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, &v1alpha1.Environment{}))
	}, "environment %s to go", name)
}

// eventMessage waits for an Event of the Environment with the reason and
// returns its message.
func (h *harness) eventMessage(env, reason string) string {
	h.t.Helper()
	var msg string
	h.eventually(func() bool {
		list, err := h.cluster.Client.EventsV1().Events(h.ns).List(h.ctx(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Environment" && e.Regarding.Name == env && e.Reason == reason {
				msg = e.Note
				return true
			}
		}
		return false
	}, "event %s of %s", reason, env)
	return msg
}

// createdRuns are the operations of the Runs the Environment's RunCreated
// Events announce.
func (h *harness) createdRuns(env string) []string {
	h.t.Helper()
	list, err := h.cluster.Client.EventsV1().Events(h.ns).List(h.ctx(), metav1.ListOptions{})
	require.NoError(h.t, err)
	var ops []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Environment" && e.Regarding.Name == env && e.Reason == EventRunCreated {
			op, _, _ := strings.Cut(strings.TrimPrefix(e.Note[strings.Index(e.Note, "(")+1:], ""), ",")
			ops = append(ops, strings.TrimSuffix(op, ")"))
		}
	}
	return ops
}

// Deleting a prod-kind Environment without a deletion policy, or any with
// deletionPolicy orphan, removes the finalizer without a destroy Run and
// says where the stack is kept; a prod Environment that says destroy is
// destroyed.
func TestDeletionPolicy_ProdOrphanedByDefault_DestroyWhenAsked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	prod := h.newEnv("prod", "")
	prod.Spec.Kind = ""
	prod.Spec.Backend.URL = "s3://state-bucket?endpoint=http://127.0.0.1:9000&secret=hunter2"
	h.create(prod)
	keep := h.newEnv("keep", "")
	keep.Spec.DeletionPolicy = v1alpha1.DeletionOrphan
	h.create(keep)
	asked := h.newEnv("asked", "")
	asked.Spec.Kind = "prod"
	asked.Spec.DeletionPolicy = v1alpha1.DeletionDestroy
	h.create(asked)
	for _, name := range []string{"prod", "keep", "asked"} {
		h.ready(name)
		require.NoError(t, h.c.Delete(h.ctx(), h.env(name)))
	}

	h.gone("prod")
	h.gone("keep")
	msg := h.eventMessage("prod", EventOrphaned)
	// The Runs went with their Environment (garbage collection): the
	// Events say which were created.
	assert.Equal(t, []string{"up"}, h.createdRuns("prod"), "no destroy Run for prod")
	assert.Equal(t, []string{"up"}, h.createdRuns("keep"), "no destroy Run with deletionPolicy orphan")
	assert.Contains(t, msg, "kind prod")
	assert.Contains(t, msg, "tinyproj/prod")
	assert.Contains(t, msg, "s3://state-bucket", "the backend")
	assert.NotContains(t, msg, "hunter2", "never the URL's query")
	assert.Contains(t, h.eventMessage("keep", EventOrphaned), "spec.deletionPolicy is orphan")

	run := h.waitRun("asked-2")
	assert.Equal(t, v1alpha1.OpDestroy, run.Spec.Operation)
	h.finish("asked-2", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.gone("asked")
	h.waitEvents("asked", EventDestroyed)
}

// A Stalled Environment is tried again when its revision changes: a new
// Git commit, or a new version of its definition in the operator's binary
// (here: an operator restarted with another Registry.Version). The same
// binary and commit leave it Stalled.
func TestStalled_ClearedByNewCommitAndNewDefinitionVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	h.git.set(c1, "replicas: 2\n")
	v1 := fleet.Registry{Definitions: []stacks.Builder{tiny}, Version: "build-1"}
	h.start(Options{Registry: v1, MaxFailures: 1})
	env := h.newEnv("stuck", "")
	env.Spec.Source = &v1alpha1.GitSource{URL: "https://git.example/p.git", Ref: v1alpha1.GitRef{Branch: "main"}, Path: "p.yaml",
		Interval: &metav1.Duration{Duration: time.Minute}}
	h.create(env)
	run := h.waitRun("stuck-1")
	h.finish("stuck-1", v1alpha1.RunFailed, v1alpha1.ReasonFailed, "the program panicked", nil)
	h.waitEnv("stuck", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, ReasonRetriesExhausted), "Stalled")
	h.clock.Advance(time.Hour)
	h.poke("stuck")
	assert.Equal(t, int64(1), h.env("stuck").Status.RunCount, "the same commit and definition stay Stalled")

	// A new commit.
	h.git.set(c2, "replicas: 2\n")
	h.clock.Advance(time.Minute)
	h.poke("stuck")
	run2 := h.waitRun("stuck-2")
	assert.Equal(t, c2, run2.Spec.Commit)
	assert.NotEqual(t, run.Spec.Revision, run2.Spec.Revision)
	h.waitEnv("stuck", hasCond(v1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonRevisionChanged), "unstalled by the commit")
	h.finish("stuck-2", v1alpha1.RunFailed, v1alpha1.ReasonFailed, "the program panicked again", nil)
	h.waitEnv("stuck", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, ReasonRetriesExhausted), "Stalled again")

	// The same binary restarted: still Stalled.
	h.stop()
	h.start(Options{Registry: v1, MaxFailures: 1})
	h.poke("stuck")
	assert.Equal(t, int64(2), h.env("stuck").Status.RunCount, "a restart with the same definition changes nothing")

	// A new definition version (a new image): a new up of the same commit.
	h.stop()
	h.start(Options{Registry: fleet.Registry{Definitions: []stacks.Builder{tiny}, Version: "build-2"}, MaxFailures: 1})
	run3 := h.waitRun("stuck-3")
	assert.Equal(t, c2, run3.Spec.Commit)
	assert.Equal(t, run2.Spec.Params, run3.Spec.Params)
	assert.NotEqual(t, run2.Spec.Revision, run3.Spec.Revision)
	env = h.waitEnv("stuck", hasCond(v1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonRevisionChanged), "unstalled by the definition version")
	assert.Zero(t, env.Status.Failures)
}

// spec.runTimeout reaches every Run as spec.timeout (1h when unset); the
// API server refuses one outside 1s..24h and backends without lock
// recovery. A Run that timed out backs off like any failure.
func TestRunTimeout_ReachesRunsAndBacksOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry, Backoff: 10 * time.Second})
	short := h.newEnv("short", "")
	short.Spec.RunTimeout = &metav1.Duration{Duration: 5 * time.Second}
	h.create(short)
	h.create(h.newEnv("plain", ""))
	assert.Equal(t, 5*time.Second, h.waitRun("short-1").Spec.Timeout.Duration)
	assert.Equal(t, time.Hour, h.waitRun("plain-1").Spec.Timeout.Duration)

	for _, d := range []time.Duration{0, 48 * time.Hour} {
		bad := h.newEnv("bad", "")
		bad.Spec.RunTimeout = &metav1.Duration{Duration: d}
		err := h.c.Create(h.ctx(), bad)
		require.Error(t, err, d)
		assert.Contains(t, err.Error(), "spec.runTimeout must be between 1s and 24h", d)
	}
	for _, url := range []string{"gs://bucket", "azblob://c", "https://api.pulumi.com"} {
		bad := h.newEnv("bad", "")
		bad.Spec.Backend.URL = url
		err := h.c.Create(h.ctx(), bad)
		require.Error(t, err, url)
		assert.Contains(t, err.Error(), "spec.backend.url", url)
	}

	h.finish("short-1", v1alpha1.RunFailed, v1alpha1.ReasonTimeout, "up did not finish within spec.timeout 5s", nil)
	env := h.waitEnv("short", func(e *v1alpha1.Environment) bool { return e.Status.Failures == 1 }, "a failure")
	require.NotNil(t, env.Status.NextAttempt)
	assert.Equal(t, h.clock.Now().Add(10*time.Second), env.Status.NextAttempt.Time, "back-off")
	assert.Equal(t, v1alpha1.ReasonTimeout, env.Status.LastRun.Reason)
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "spec.timeout 5s")
	h.clock.Advance(10 * time.Second)
	h.poke("short")
	h.waitRun("short-2")
}

// Deleting the namespace of an Environment: Kubernetes refuses the
// destroy Run there, so the Environment says why and how to finish
// (Stalled, reason NamespaceTerminating); deletionPolicy orphan then lets
// it and the namespace go.
func TestNamespaceTerminating_SaysHowToFinish(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The leader election Lease lives elsewhere: the namespace goes.
	h.leaderNS = h.ns + "-leader"
	require.NoError(t, h.c.Create(h.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.leaderNS}}))
	t.Cleanup(func() {
		assert.NoError(t, client.IgnoreNotFound(h.c.Delete(h.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.leaderNS}})))
	})
	h.start(Options{Registry: registry})
	h.create(h.newEnv("tenant", ""))
	h.ready("tenant")
	require.NoError(t, h.c.Delete(h.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}))
	env := h.waitEnv("tenant", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, ReasonNamespaceTerminating), "NamespaceTerminating")
	msg := cond(env, v1alpha1.ConditionStalled).Message
	assert.Contains(t, msg, "tinyproj/tenant")
	assert.Contains(t, msg, "spec.deletionPolicy: orphan")
	assert.Empty(t, env.Status.ActiveRun)

	h.update("tenant", func(e *v1alpha1.Environment) { e.Spec.DeletionPolicy = v1alpha1.DeletionOrphan })
	h.gone("tenant")
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Name: h.ns}, &corev1.Namespace{}))
	}, "namespace %s to go", h.ns)
}

// Deleting the namespace of an Environment and its Secrets completes: the
// Secrets its destroy reads carry its finalizer (only while it names
// them), so they are still there when Kubernetes refuses the destroy Run;
// the operator then runs the destroy itself (Options.Destroy, retried
// after a failure with back-off), releases the Secrets and the
// Environment, and the namespace goes.
func TestNamespaceDeletion_OperatorDestroysWithTheProtectedSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.leaderNS = h.ns + "-leader"
	require.NoError(t, h.c.Create(h.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.leaderNS}}))
	t.Cleanup(func() {
		assert.NoError(t, client.IgnoreNotFound(h.c.Delete(h.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.leaderNS}})))
	})
	value := func(name string) string {
		if name == "target" {
			return inlineKubeconfig // the operator checks it is one
		}
		return name + "-value"
	}
	for _, name := range []string{"state", "pass", "target", "old"} {
		require.NoError(t, h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
			StringData: map[string]string{"v": value(name)}}))
	}
	type call struct {
		run  v1alpha1.Run
		read map[string]string
	}
	calls := make(chan call, 4)
	var fail atomic.Bool
	fail.Store(true)
	destroy := func(ctx context.Context, secrets client.Reader, run *v1alpha1.Run) v1alpha1.RunStatus {
		c := call{run: *run.DeepCopy(), read: map[string]string{}}
		for _, name := range []string{"state", "pass", "target"} {
			var s corev1.Secret
			if err := secrets.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, &s); err == nil {
				c.read[name] = string(s.Data["v"])
			}
		}
		calls <- c
		if fail.Swap(false) {
			return v1alpha1.RunStatus{Phase: v1alpha1.RunFailed, Reason: v1alpha1.ReasonLocked, Message: "stack is locked"}
		}
		return v1alpha1.RunStatus{Phase: v1alpha1.RunSucceeded, Reason: v1alpha1.ReasonSucceeded, Message: "destroy: delete 3"}
	}
	h.start(Options{Registry: registry, Destroy: destroy, Backoff: 10 * time.Second})
	env := h.newEnv("tenant", "")
	env.Spec.Backend.EnvFromSecret = "state"
	env.Spec.Backend.PassphraseSecretRef = &v1alpha1.SecretKeyRef{Name: "pass", Key: "v"}
	env.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "target", Key: "v"}
	env.Spec.Secrets = []v1alpha1.SecretValue{{Name: "old", ValueFrom: v1alpha1.SecretKeyRef{Name: "old", Key: "v"}}}
	h.create(env)
	h.ready("tenant")
	h.waitEnv("tenant", func(e *v1alpha1.Environment) bool {
		return slices.Equal(e.Status.ProtectedSecrets, []string{"old", "pass", "state", "target"})
	}, "the Secrets protected")
	finalizer := v1alpha1.SecretFinalizerPrefix + "tenant"
	secret := func(name string) *corev1.Secret {
		var s corev1.Secret
		require.NoError(t, h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, &s))
		return &s
	}
	assert.Contains(t, secret("state").Finalizers, finalizer)
	// A Secret the spec no longer names is released.
	h.update("tenant", func(e *v1alpha1.Environment) { e.Spec.Secrets = nil })
	h.waitEnv("tenant", func(e *v1alpha1.Environment) bool {
		return slices.Equal(e.Status.ProtectedSecrets, []string{"pass", "state", "target"})
	}, "old released")
	assert.NotContains(t, secret("old").Finalizers, finalizer)
	h.waitRun("tenant-2")
	h.finish("tenant-2", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("tenant", func(e *v1alpha1.Environment) bool {
		return e.Status.ActiveRun == "" && e.Status.LastRun.Name == "tenant-2"
	}, "tenant-2 folded")

	require.NoError(t, h.c.Delete(h.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}))
	var first call
	select {
	case first = <-calls:
	case <-time.After(time.Minute):
		t.Fatal("the operator never destroyed the stack")
	}
	assert.Equal(t, v1alpha1.OpDestroy, first.run.Spec.Operation)
	assert.Equal(t, "tinyproj/tenant", first.run.Spec.Stack)
	assert.True(t, first.run.Spec.RemoveStack)
	assert.Equal(t, map[string]string{"state": "state-value", "pass": "pass-value", "target": inlineKubeconfig}, first.read,
		"the destroy reads the Secrets after the namespace's deletion began")
	env = h.waitEnv("tenant", func(e *v1alpha1.Environment) bool { return e.Status.Failures == 1 }, "a failed destroy backs off")
	assert.Equal(t, v1alpha1.ReasonLocked, env.Status.LastRun.Reason)
	select {
	case <-calls:
		t.Fatal("the destroy was retried during its back-off")
	case <-time.After(2 * time.Second):
	}
	h.clock.Advance(10 * time.Second)
	h.poke("tenant")
	select {
	case <-calls:
	case <-time.After(time.Minute):
		t.Fatal("the destroy was not retried after its back-off")
	}
	h.gone("tenant")
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Name: h.ns}, &corev1.Namespace{}))
	}, "namespace %s to go", h.ns)
}

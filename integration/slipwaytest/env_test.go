package slipwaytest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kcorev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kmetav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	k8spolicy "github.com/slipwayhq/slipway/policypacks/kubernetes"
)

// TestEnv_UpOutputsAndKubernetesHelpers brings an environment up and reads
// it back through every helper.
func TestEnv_UpOutputsAndKubernetesHelpers(t *testing.T) {
	env := slipwaytest.New(t, automation.Program{Run: web})
	assert.True(t, strings.HasPrefix(env.Name, "testenv-upoutputsandkubernetesh"), env.Name)
	assert.LessOrEqual(t, len(env.Name), 40)
	assert.Equal(t, slipwaytest.DefaultProject, env.Project)

	ns := slipwaytest.Output[string](env, "namespace")
	assert.Equal(t, env.Name, ns, "the program names its namespace after ctx.Stack()")
	assert.Equal(t, 2, slipwaytest.Output[int](env, "replicas"), "a JSON number read as an int")
	assert.Equal(t, map[string]string{"GREETING": "hello"}, slipwaytest.Output[map[string]string](env, "data"))

	env.WaitForDeployment(ns, "web", 2*time.Minute)
	d, err := env.Client.AppsV1().Deployments(ns).Get(context.Background(), "web", kmetav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, d.Status.AvailableReplicas)
	assert.Equal(t, map[string]string{"GREETING": "hello"}, env.ConfigMap(ns, "web-config"))

	assert.Equal(t, []slipwaytest.Object{
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "web"},
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: "web-config"},
		{APIVersion: "v1", Kind: "Namespace", Name: ns},
	}, env.Owned())

	// A second up changes nothing, and the preview says so.
	assert.Zero(t, env.Up().Changes())
	assert.Equal(t, "(no changes)\n", slipwaytest.RenderChanges(env.Preview()))
}

// leaky retains a ConfigMap on delete, in a namespace the stack does not own.
func leaky(ctx *pulumi.Context) error {
	cm, err := corev1.NewConfigMap(ctx, "kept", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ctx.Stack()), Namespace: pulumi.String("default")},
		Data:     pulumi.StringMap{"k": pulumi.String("v")},
	}, pulumi.RetainOnDelete(true))
	if err != nil {
		return err
	}
	ctx.Export("configmap", cm.Metadata.Name().Elem())
	return nil
}

// TestLeakCheck_FailsTheTestForWhatIsLeftBehind: a resource retained on
// delete and a namespace created out of band (named after the environment)
// both fail the test; the stack itself is gone.
func TestLeakCheck_FailsTheTestForWhatIsLeftBehind(t *testing.T) {
	fake := newFake(t)
	var env *slipwaytest.Env
	fake.do(func() { env = slipwaytest.New(fake, automation.Program{Run: leaky}) })
	require.Empty(t, fake.errors())
	require.NotNil(t, env)
	k := env.Client
	oob := env.Name + "-oob"
	t.Cleanup(func() { deleteLeaks(t, k, env.Name, oob) })
	_, err := k.CoreV1().Namespaces().Create(context.Background(), &kcorev1.Namespace{ObjectMeta: kmetav1.ObjectMeta{Name: oob}}, kmetav1.CreateOptions{})
	require.NoError(t, err)

	// Typed outputs fail naming the key and both types, or the keys there are.
	assert.Equal(t, env.Name, slipwaytest.Output[string](env, "configmap"))
	fake.do(func() { slipwaytest.Output[int](env, "configmap") })
	assert.Contains(t, fake.errors(), `output "configmap" of `+env.Name+` is string (`+env.Name+`), not int`)
	fake.reset()
	fake.do(func() { slipwaytest.Output[string](env, "nope") })
	assert.Contains(t, fake.errors(), `has no output "nope" (it has: configmap)`)
	fake.reset()

	fake.runCleanups()
	errs := fake.errors()
	assert.Contains(t, errs, "environment "+env.Name+" left 2 thing(s) behind")
	assert.Contains(t, errs, "v1 ConfigMap default/"+env.Name+", owned by the stack, still exists")
	assert.Contains(t, errs, "namespace "+oob+" (its name contains "+env.Name+") still exists")
	assert.NotContains(t, errs, "destroying", "the destroy itself succeeded")
	assert.NotContains(t, errs, "still in backend", "the stack was removed")
	_, err = os.Stat(env.Engine.Dir())
	assert.True(t, os.IsNotExist(err), "the engine directory is removed: %v", err)
}

// deleteLeaks removes what TestLeakCheck leaves on purpose.
func deleteLeaks(t *testing.T, k kubernetes.Interface, cm, ns string) {
	ctx := context.Background()
	if err := k.CoreV1().ConfigMaps("default").Delete(ctx, cm, kmetav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting the leaked ConfigMap: %v", err)
	}
	if err := k.CoreV1().Namespaces().Delete(ctx, ns, kmetav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting the leaked namespace: %v", err)
	}
}

// TestParallel_SameProgramNeverCollides runs one program with the same
// stack name twice at once: each gets a unique name and namespace, and both
// are up at the same moment.
func TestParallel_SameProgramNeverCollides(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
		wg    sync.WaitGroup
	)
	all := make(chan struct{})
	wg.Add(2)
	go func() { wg.Wait(); close(all) }()
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"a", "b"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				var once sync.Once
				arrive := func() { once.Do(wg.Done) }
				t.Cleanup(arrive)
				env := slipwaytest.New(t, automation.Program{Stack: "same", Run: web})
				mu.Lock()
				names = append(names, env.Name)
				mu.Unlock()
				arrive()
				select {
				case <-all:
				case <-time.After(10 * time.Minute):
					t.Fatal("the other environment never came up")
				}
				mu.Lock()
				both := append([]string(nil), names...)
				mu.Unlock()
				require.Len(t, both, 2)
				for _, n := range both {
					_, err := env.Client.CoreV1().Namespaces().Get(context.Background(), n, kmetav1.GetOptions{})
					assert.NoError(t, err, "both environments are up at once")
				}
				assert.Equal(t, "hello", env.ConfigMap(env.Name, "web-config")["GREETING"])
			})
		}
	})
	require.Len(t, names, 2)
	assert.NotEqual(t, names[0], names[1])
	for _, n := range names {
		assert.Regexp(t, `^same-[a-z0-9]{5}$`, n)
	}
}

// TestGolden_WriteCompareMismatchAndUpdate: a missing golden file fails,
// SLIPWAYTEST_UPDATE=1 writes it, an equal rendering passes, a different
// one fails showing the lines, and the test package's own -update flag
// (main_test.go defines one, alongside slipwaytest) rewrites it.
func TestGolden_WriteCompareMismatchAndUpdate(t *testing.T) {
	env := slipwaytest.New(t, automation.Program{Run: web}, slipwaytest.WithoutUp())
	res := env.Preview()
	// The golden file kept with the package (SLIPWAYTEST_UPDATE=1 or -update rewrites it).
	slipwaytest.AssertGolden(t, res, filepath.Join("testdata", "preview.golden"))

	// The rest sets the variable and the flag itself, whatever the command line says.
	t.Setenv(slipwaytest.UpdateEnv, "")
	setUpdateFlag(t, false)
	path := filepath.Join(t.TempDir(), "golden", "preview.golden")
	fake := newFake(t)
	fake.do(func() { slipwaytest.AssertGolden(fake, res, path) })
	assert.Contains(t, fake.errors(), "does not exist; run the test with SLIPWAYTEST_UPDATE=1 (or the package's -update flag)")

	t.Setenv(slipwaytest.UpdateEnv, "1")
	slipwaytest.AssertGolden(t, res, path)
	t.Setenv(slipwaytest.UpdateEnv, "")
	require.FileExists(t, path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	got := string(b)
	assert.Contains(t, got, "create kubernetes:apps/v1:Deployment web\n")
	assert.Contains(t, got, "create pulumi:pulumi:Stack slipwaytest-<stack>\n")
	assert.NotContains(t, got, env.Name, "the unique name is replaced")
	slipwaytest.AssertGolden(t, res, path)

	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(got, "Deployment web", "Deployment api", 1)), 0o644))
	fake = newFake(t)
	fake.do(func() { slipwaytest.AssertGolden(fake, res, path) })
	assert.Contains(t, fake.errors(), "the changes differ from golden file "+path)
	assert.Contains(t, fake.errors(), "\n- create kubernetes:apps/v1:Deployment api\n+ create kubernetes:apps/v1:Deployment web\n")

	setUpdateFlag(t, true)
	fake = newFake(t)
	fake.do(func() { slipwaytest.AssertGolden(fake, res, path) })
	setUpdateFlag(t, false)
	assert.Empty(t, fake.errors())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, got, string(b), "-update rewrote the file")
}

// TestKeep_FailedTestKeepsItsEnvironment: with SLIPWAY_TEST_KEEP=1 a failed
// test keeps its stack and objects and says where they are; a passing test
// keeps nothing.
func TestKeep_FailedTestKeepsItsEnvironment(t *testing.T) {
	t.Setenv(slipwaytest.KeepEnv, "1")
	ctx := context.Background()

	t.Run("failed", func(t *testing.T) {
		fake := newFake(t)
		var env *slipwaytest.Env
		fake.do(func() { env = slipwaytest.New(fake, automation.Program{Run: web}) })
		require.NotNil(t, env)
		t.Cleanup(func() {
			// Destroy what the harness kept.
			if _, err := env.Stack.Destroy(ctx, optdestroy.RemoveStack()); err != nil {
				t.Errorf("destroying the kept environment: %v", err)
			}
			_ = os.RemoveAll(env.Engine.Dir())
		})
		fake.Errorf("the test failed")
		fake.runCleanups()
		assert.Equal(t, "the test failed", fake.errors(), "nothing else is reported")
		logged := fake.logged()
		assert.Contains(t, logged, "environment "+env.Name+" is kept:")
		assert.Contains(t, logged, "\n  stack:       "+slipwaytest.DefaultProject+"/"+env.Name+"\n")
		assert.Contains(t, logged, "\n  backend:     "+env.Engine.Backend()+"\n")
		assert.Contains(t, logged, "\n  kubeconfig:  "+env.Kubeconfig+"\n")
		assert.Contains(t, logged, "pulumi destroy --remove --yes --stack "+env.Name)
		names, err := env.Engine.Stacks(ctx, env.Project)
		require.NoError(t, err)
		assert.Contains(t, names, env.Name, "the stack is kept")
		_, err = env.Client.CoreV1().Namespaces().Get(ctx, env.Name, kmetav1.GetOptions{})
		assert.NoError(t, err, "its namespace is kept")
		assert.FileExists(t, filepath.Join(env.Engine.Dir(), "workspaces", env.Project, env.Name, "Pulumi.yaml"),
			"the workspace the message names")
	})

	t.Run("passed", func(t *testing.T) {
		fake := newFake(t)
		var env *slipwaytest.Env
		fake.do(func() { env = slipwaytest.New(fake, automation.Program{Run: web}) })
		require.NotNil(t, env)
		fake.runCleanups()
		assert.Empty(t, fake.errors())
		assert.NotContains(t, fake.logged(), "kept")
		ns, err := env.Client.CoreV1().Namespaces().Get(ctx, env.Name, kmetav1.GetOptions{})
		if err == nil {
			assert.NotNil(t, ns.DeletionTimestamp, "the namespace is gone or terminating")
		} else {
			assert.True(t, apierrors.IsNotFound(err), "%v", err)
		}
		assert.NoDirExists(t, env.Engine.Dir(), "the backend is removed with the stack")
	})
}

// TestLeakCheck_ReportsALockLeftOnTheStack: a lock held on the stack (by
// this live process, so nothing may remove it) keeps the destroy from
// running, and the leak check names both the stack and the lock.
func TestLeakCheck_ReportsALockLeftOnTheStack(t *testing.T) {
	fake := newFake(t)
	var env *slipwaytest.Env
	fake.do(func() { env = slipwaytest.New(fake, automation.Program{Run: web}, slipwaytest.WithoutUp()) })
	require.NotNil(t, env)
	state := strings.TrimPrefix(env.Engine.Backend(), "file://")
	lock := filepath.Join(state, ".pulumi", "locks", "organization", env.Project, env.Name, "held-by-test.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(lock), 0o755))
	host, err := os.Hostname()
	require.NoError(t, err)
	body, err := json.Marshal(map[string]any{"pid": os.Getpid(), "username": "test", "hostname": host, "timestamp": time.Now()})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(lock, body, 0o644))
	t.Cleanup(func() { _ = os.RemoveAll(env.Engine.Dir()) })

	fake.runCleanups()
	errs := fake.errors()
	assert.Contains(t, errs, "slipwaytest: destroying "+env.Name+": ")
	assert.Contains(t, errs, "stack "+env.Project+"/"+env.Name+" is still in backend "+env.Engine.Backend())
	assert.Contains(t, errs, "lock "+lock+" of stack "+env.Name+" remains (held by test@"+host)
}

// TestPolicies_EnforcedByTheEngine: WithPolicies makes the engine run the
// packs (served by this test binary through Main) on every preview.
func TestPolicies_EnforcedByTheEngine(t *testing.T) {
	env := slipwaytest.New(t, automation.Program{Run: privileged}, slipwaytest.WithoutUp(),
		slipwaytest.WithPolicies(policypacks.Settings{Kind: "prod"}, k8spolicy.Pack()))
	require.Len(t, env.Program.Policies, 1)
	res, err := env.PreviewE()
	require.Error(t, err)
	assert.True(t, automation.IsPolicyBlocked(err), "%v", err)
	require.NotNil(t, res)
	var blocking []string
	for _, f := range res.Policy {
		if f.Blocking() {
			blocking = append(blocking, f.Policy)
		}
	}
	assert.Contains(t, blocking, "no-privileged")
	assert.Contains(t, blocking, "image-pinned")
}

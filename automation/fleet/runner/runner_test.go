package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	k8scorev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	k8smetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/install"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// cluster is the package's local control plane (TestMain), with the
// slipway.dev CRDs applied.
var (
	cluster *localk8s.Cluster
	kube    client.Client
)

func TestMain(m *testing.M) {
	// The engine runs this binary as the policy analyzer.
	all.ServeIfAnalyzer()
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c, err := localk8s.StartCluster(ctx, localk8s.WithLog(os.Stderr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner tests: starting the local cluster:", err)
		return 1
	}
	cluster = c
	code := 1
	if err := setup(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "runner tests:", err)
	} else {
		code = m.Run()
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "runner tests: stopping the local cluster:", err)
		code = 1
	}
	return code
}

// setup makes the test client and applies the CRDs, waiting until they
// are established.
func setup(ctx context.Context) error {
	s, err := fleet.Scheme()
	if err != nil {
		return err
	}
	if kube, err = client.New(cluster.Config, client.Options{Scheme: s}); err != nil {
		return err
	}
	crds, err := install.CRDs()
	if err != nil {
		return err
	}
	return install.Apply(ctx, cluster.Config, crds)
}

// poll calls done until it reports true, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cmParams are the test program's parameters.
type cmParams struct {
	// Namespace defaults to "ft-<env>".
	Namespace string
	// Data is the ConfigMap's data.
	Data map[string]string
}

// cmDefinition is a tiny definition: a namespace and one ConfigMap "settings",
// exporting their names and, when the environment has one, the secret
// "token" (a secret output).
var cmDefinition = &stacks.Definition[cmParams]{
	Name:        "cm",
	Project:     "fleettest",
	Description: "a namespace and one ConfigMap",
	Complete: func(e *stacks.Env[cmParams]) {
		if e.Params.Namespace == "" {
			e.Params.Namespace = "ft-" + e.Name
		}
	},
	Validate: func(e stacks.Env[cmParams]) error {
		if len(e.Params.Data) == 0 {
			return stacks.Errorf("Params.Data", "is empty; set at least one key")
		}
		return nil
	},
	Run: func(ctx *pulumi.Context, e stacks.Env[cmParams]) error {
		if v, ok := gates.Load(e.Name); ok {
			if err := v.(*gate).pass(ctx.Context()); err != nil {
				return err
			}
		}
		prov, err := e.KubernetesProvider(ctx, "k8s")
		if err != nil {
			return err
		}
		ns, err := k8scorev1.NewNamespace(ctx, "ns", &k8scorev1.NamespaceArgs{
			Metadata: &k8smetav1.ObjectMetaArgs{Name: pulumi.String(e.Params.Namespace)},
		}, pulumi.Provider(prov))
		if err != nil {
			return err
		}
		cm, err := k8scorev1.NewConfigMap(ctx, "settings", &k8scorev1.ConfigMapArgs{
			Metadata: &k8smetav1.ObjectMetaArgs{Name: pulumi.String("settings"), Namespace: ns.Metadata.Name().Elem()},
			Data:     pulumi.ToStringMap(e.Params.Data),
		}, pulumi.Provider(prov))
		if err != nil {
			return err
		}
		ctx.Export("namespace", ns.Metadata.Name().Elem())
		ctx.Export("configMap", cm.Metadata.Name().Elem())
		secrets, ok, err := stacks.Secrets(ctx)
		if err != nil {
			return err
		}
		if ok {
			ctx.Export("token", secrets.MapIndex(pulumi.String("token")))
		}
		return nil
	},
	Plugins: func(stacks.Env[cmParams]) []automation.Plugin {
		return []automation.Plugin{automation.KubernetesPlugin}
	},
}

// gates hold the first program run of an environment (by name) until
// released, so a test can act while the engine is in the middle of it.
var gates sync.Map

// gate holds the first run that passes it.
type gate struct {
	once             sync.Once
	entered, release chan struct{}
}

func newGate(t *testing.T, env string) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	gates.Store(env, g)
	t.Cleanup(func() {
		close(g.release)
		gates.Delete(env)
	})
	return g
}

// pass blocks the first caller until the gate is released (then the run
// fails), and lets every later caller through.
func (g *gate) pass(ctx context.Context) error {
	first := false
	g.once.Do(func() { first = true })
	if !first {
		return nil
	}
	close(g.entered)
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return errors.New("the gated run was released")
}

// fixture is one test's namespace of Runs, state backend and runners'
// work directory.
type fixture struct {
	t       *testing.T
	ns      string
	backend string
	state   string
	workDir string
}

func newFixture(t *testing.T, ns string) *fixture {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	state := t.TempDir()
	return &fixture{t: t, ns: ns, state: state, backend: "file://" + state, workDir: t.TempDir()}
}

// start runs a runner of the fixture's namespace until the test ends.
func (f *fixture) start(identity string, mutate ...func(*Options)) {
	f.t.Helper()
	o := Options{
		Identity:      identity,
		Namespaces:    []string{f.ns},
		Concurrency:   2,
		LeaseDuration: 3 * time.Second,
		Registry:      fleet.Registry{Definitions: []stacks.Builder{cmDefinition}, Packs: all.Packs()},
		Engine:        []automation.EngineOption{automation.WithResolver(toolchain.New(toolchain.WithLog(os.Stderr)))},
		WorkDir:       f.workDir,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", f.t.Name()),
		// Runs without a target kubeconfig use the runner's own credentials.
		AllowRunnerCredentials: []string{f.ns},
	}
	for _, m := range mutate {
		m(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cluster.Config, o, "0", "0") }()
	f.t.Cleanup(func() {
		cancel()
		assert.NoError(f.t, <-errc, "runner %s", identity)
	})
}

// run returns an up Run of the cm program for env with data.
func (f *fixture) run(name, env string, op v1alpha1.Operation, params string) *v1alpha1.Run {
	return &v1alpha1.Run{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{"slipway.dev/environment": env}},
		Spec: v1alpha1.RunSpec{Environment: env, Operation: op, Inputs: v1alpha1.Inputs{
			Definition: "cm",
			Kind:       "dev",
			Params:     &apiextensionsv1.JSON{Raw: []byte(params)},
			Backend:    v1alpha1.Backend{URL: f.backend},
		}},
	}
}

// create creates run as its Environment's operator would: the
// Environment (created with the Run's inputs when it does not exist)
// controls the Run and its status names it as the active Run, at the
// Run's revision (see ask).
func (f *fixture) create(run *v1alpha1.Run) {
	f.t.Helper()
	ctx := context.Background()
	env := &v1alpha1.Environment{}
	err := kube.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: run.Spec.Environment}, env)
	if apierrors.IsNotFound(err) {
		env = &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: run.Spec.Environment, Namespace: f.ns},
			Spec: v1alpha1.EnvironmentSpec{Inputs: *run.Spec.Inputs.DeepCopy()}}
		err = kube.Create(ctx, env)
	}
	require.NoError(f.t, err)
	f.ask(env, run)
	require.NoError(f.t, controllerutil.SetControllerReference(env, run, kube.Scheme()))
	require.NoError(f.t, kube.Create(ctx, run))
}

// ask writes what the operator writes before it creates run: the
// Environment's status.activeRun, revision and stack; for a destroy, the
// Environment's spec holds the Run's inputs and it is being deleted.
func (f *fixture) ask(env *v1alpha1.Environment, run *v1alpha1.Run) {
	f.t.Helper()
	ctx := context.Background()
	if run.Spec.Revision == "" {
		run.Spec.Revision = fleet.Revision(run.Spec.Inputs, run.Spec.Commit)
	}
	env.Status.ActiveRun, env.Status.Revision, env.Status.Stack = run.Name, run.Spec.Revision, run.Spec.Stack
	require.NoError(f.t, kube.Status().Update(ctx, env))
	if run.Spec.Operation != v1alpha1.OpDestroy {
		return
	}
	env.Spec.Inputs = *run.Spec.Inputs.DeepCopy()
	controllerutil.AddFinalizer(env, v1alpha1.Finalizer)
	require.NoError(f.t, kube.Update(ctx, env))
	require.NoError(f.t, kube.Delete(ctx, env))
}

// wait polls the Run until cond holds, failing with its status after timeout.
func (f *fixture) wait(name string, timeout time.Duration, cond func(*v1alpha1.Run) bool) *v1alpha1.Run {
	f.t.Helper()
	var run v1alpha1.Run
	err := poll(context.Background(), timeout, func() (bool, error) {
		if err := kube.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &run); err != nil {
			return false, err
		}
		return cond(&run), nil
	})
	require.NoError(f.t, err, "run %s: status %s", name, statusJSON(&run))
	return &run
}

// finished waits for the Run to finish.
func (f *fixture) finished(name string) *v1alpha1.Run {
	f.t.Helper()
	return f.wait(name, 5*time.Minute, func(r *v1alpha1.Run) bool { return r.Status.Phase.Finished() })
}

// succeeded waits for the Run to succeed.
func (f *fixture) succeeded(name string) *v1alpha1.Run {
	f.t.Helper()
	run := f.finished(name)
	require.Equal(f.t, v1alpha1.RunSucceeded, run.Status.Phase, "run %s: %s", name, statusJSON(run))
	return run
}

// events returns the Events about a Run.
func (f *fixture) events(name string) []eventsv1.Event {
	f.t.Helper()
	var list eventsv1.EventList
	require.NoError(f.t, kube.List(context.Background(), &list, client.InNamespace(f.ns)))
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "Run" && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an Event with the reason about the Run.
func (f *fixture) waitEvent(name, reason string) []eventsv1.Event {
	f.t.Helper()
	var evs []eventsv1.Event
	require.NoError(f.t, poll(context.Background(), time.Minute, func() (bool, error) {
		evs = f.events(name)
		return slices.ContainsFunc(evs, func(e eventsv1.Event) bool { return e.Reason == reason }), nil
	}), "no %s event for run %s", reason, name)
	return evs
}

func countReason(evs []eventsv1.Event, reason string) int {
	n := 0
	for _, e := range evs {
		if e.Reason == reason {
			n++
		}
	}
	return n
}

func statusJSON(run *v1alpha1.Run) string {
	b, _ := json.Marshal(run.Status)
	return string(b)
}

// configMap reads the program's ConfigMap of env.
func configMap(t *testing.T, env string) (*corev1.ConfigMap, error) {
	t.Helper()
	return cluster.Client.CoreV1().ConfigMaps("ft-"+env).Get(context.Background(), "settings", metav1.GetOptions{})
}

func TestTwoRunnersRaceForOneRun_ExactlyOneClaimsAndRunsIt(t *testing.T) {
	f := newFixture(t, "rt-race")
	ctx := context.Background()
	kubeconfig, err := cluster.InlineKubeconfig("")
	require.NoError(t, err)
	const passphrase, token, envValue = "correct-horse-battery-staple", "tok-supersecret-4711", "env-secret-value-0815"
	require.NoError(t, kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: f.ns},
		Data: map[string][]byte{"passphrase": []byte(passphrase), "token": []byte(token), "kubeconfig": kubeconfig}}))
	require.NoError(t, kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "engine-env", Namespace: f.ns},
		Data: map[string][]byte{"TEST_MARKER": []byte(envValue)}}))

	run := f.run("race-1", "race", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`)
	run.Spec.Backend.PassphraseSecretRef = &v1alpha1.SecretKeyRef{Name: "creds", Key: "passphrase"}
	run.Spec.Backend.EnvFromSecret = "engine-env"
	run.Spec.Target.KubeconfigSecretRef = &v1alpha1.SecretKeyRef{Name: "creds", Key: "kubeconfig"}
	run.Spec.Secrets = []v1alpha1.SecretValue{{Name: "token", ValueFrom: v1alpha1.SecretKeyRef{Name: "creds", Key: "token"}}}
	f.create(run)
	f.start("runner-a")
	f.start("runner-b")

	got := f.succeeded("race-1")
	assert.EqualValues(t, 1, got.Status.Attempts, "claimed once, never taken over: %s", statusJSON(got))
	assert.Contains(t, []string{"runner-a", "runner-b"}, got.Status.Runner)
	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, host, got.Status.RunnerHost)
	assert.Equal(t, v1alpha1.ReasonSucceeded, got.Status.Reason)
	assert.GreaterOrEqual(t, got.Status.Changes["create"], 3, "stack, provider, namespace, ConfigMap: %v", got.Status.Changes)
	assert.Equal(t, map[string]string{"namespace": "ft-race", "configMap": "settings"}, got.Status.Outputs, "the secret output is dropped")
	assert.Equal(t, "fleettest/rt-race.race", got.Status.Stack, "the stack is per namespace")
	require.NotNil(t, got.Status.ClaimTime)
	require.NotNil(t, got.Status.StartTime)
	require.NotNil(t, got.Status.CompletionTime)
	assert.False(t, got.Status.CompletionTime.Before(got.Status.StartTime))
	assert.Equal(t, "run-race-1", got.Status.Lease)

	cm, err := configMap(t, "race")
	require.NoError(t, err)
	assert.Equal(t, "blue", cm.Data["color"])

	evs := f.waitEvent("race-1", "Succeeded")
	assert.Equal(t, 1, countReason(evs, "Claimed"), "one claim: %v", evs)
	assert.Zero(t, countReason(evs, "TookOver"))
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	for _, s := range []string{statusJSON(got), string(b)} {
		for _, secret := range []string{passphrase, token, envValue} {
			assert.NotContains(t, s, secret)
		}
	}
	// The finisher deletes the Lease.
	require.NoError(t, poll(ctx, 30*time.Second, func() (bool, error) {
		err := kube.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "run-race-1"}, &coordinationv1.Lease{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}))
	// The kubeconfig is removed after the run.
	_, err = os.Stat(filepath.Join(f.workDir, "kubeconfigs", f.ns, "race.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestConcurrencyOne_RunsOneRunAtATime(t *testing.T) {
	f := newFixture(t, "rt-conc")
	f.create(f.run("conc-a-1", "conc-a", v1alpha1.OpUp, `{"Data":{"n":"a"}}`))
	f.create(f.run("conc-b-1", "conc-b", v1alpha1.OpUp, `{"Data":{"n":"b"}}`))
	f.start("runner-one", func(o *Options) { o.Concurrency = 1 })

	ctx := context.Background()
	var runs v1alpha1.RunList
	require.NoError(t, poll(ctx, 10*time.Minute, func() (bool, error) {
		if err := kube.List(ctx, &runs, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		active, done := 0, 0
		for _, r := range runs.Items {
			switch {
			case r.Status.Phase == v1alpha1.RunClaimed || r.Status.Phase == v1alpha1.RunRunning:
				active++
			case r.Status.Phase.Finished():
				done++
			}
		}
		assert.LessOrEqual(t, active, 1, "two runs active at once")
		return done == 2, nil
	}))
	items := runs.Items
	for _, r := range items {
		require.Equal(t, v1alpha1.RunSucceeded, r.Status.Phase, "%s: %s", r.Name, statusJSON(&r))
		require.EqualValues(t, 1, r.Status.Attempts)
	}
	slices.SortFunc(items, func(a, b v1alpha1.Run) int { return a.Status.ClaimTime.Compare(b.Status.ClaimTime.Time) })
	first, second := items[0].Status, items[1].Status
	assert.False(t, second.ClaimTime.Before(first.CompletionTime),
		"the second run was claimed (%s) before the first completed (%s)", second.ClaimTime, first.CompletionTime)
	assert.False(t, second.StartTime.Before(first.CompletionTime))
}

func TestExpiredLease_RunIsTakenOverAndCompletes(t *testing.T) {
	f := newFixture(t, "rt-takeover")
	ctx := context.Background()
	run := f.run("takeover-1", "takeover", v1alpha1.OpUp, `{"Data":{"color":"green"}}`)
	f.create(run)
	// A runner on host "dead-host" claimed it, started it and died: its
	// Lease was last renewed an hour ago, and its engine's lock remains.
	old := metav1.NewTime(time.Now().Add(-time.Hour))
	run.Status = v1alpha1.RunStatus{Phase: v1alpha1.RunRunning, Runner: "dead-runner", RunnerHost: "dead-host",
		Attempts: 1, ClaimTime: &old, StartTime: &old, Lease: "run-takeover-1"}
	require.NoError(t, kube.Status().Update(ctx, run))
	renewed := metav1.NewMicroTime(old.Time)
	require.NoError(t, kube.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "run-takeover-1", Namespace: f.ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("dead-runner"), LeaseDurationSeconds: ptr.To[int32](3),
			AcquireTime: &renewed, RenewTime: &renewed},
	}))
	// It had created the stack and taken its lock for the update.
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithBackend(f.backend),
		automation.WithResolver(toolchain.New(toolchain.WithLog(os.Stderr))))
	require.NoError(t, err)
	_, err = e.UpsertStack(ctx, automation.Program{Project: "fleettest", Stack: "rt-takeover.takeover", Run: func(*pulumi.Context) error { return nil }})
	require.NoError(t, err)
	lock, err := json.Marshal(statestore.Lock{PID: 4242, Username: "runner", Hostname: "dead-host", Timestamp: old.Time})
	require.NoError(t, err)
	lockFile := filepath.Join(f.state, ".pulumi", "locks", "organization", "fleettest", "rt-takeover.takeover", "dead.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(lockFile), 0o755))
	require.NoError(t, os.WriteFile(lockFile, lock, 0o644))

	f.start("runner-new")
	got := f.succeeded("takeover-1")
	assert.EqualValues(t, 2, got.Status.Attempts)
	assert.Equal(t, "runner-new", got.Status.Runner)
	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, host, got.Status.RunnerHost)
	assert.Contains(t, got.Status.Recovery, "took over from dead-runner on dead-host")
	assert.Contains(t, got.Status.Recovery, "removed stale lock", "the expired lease proves dead-host's lock stale")
	assert.Contains(t, got.Status.Recovery, "dead-host")
	assert.True(t, got.Status.ClaimTime.After(old.Time))
	_, err = os.Stat(lockFile)
	assert.ErrorIs(t, err, os.ErrNotExist)
	cm, err := configMap(t, "takeover")
	require.NoError(t, err)
	assert.Equal(t, "green", cm.Data["color"])
	evs := f.waitEvent("takeover-1", "Succeeded")
	assert.Equal(t, 1, countReason(evs, "TookOver"))
}

func TestLostLease_CancelsTheRunWhichIsTakenOverAndCompleted(t *testing.T) {
	f := newFixture(t, "rt-lost")
	ctx := context.Background()
	g := newGate(t, "lost")
	f.start("runner-x")
	f.create(f.run("lost-1", "lost", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`))
	select {
	case <-g.entered:
	case <-time.After(3 * time.Minute):
		t.Fatal("the program never ran")
	}
	running := f.wait("lost-1", time.Minute, func(r *v1alpha1.Run) bool { return r.Status.Phase == v1alpha1.RunRunning })
	require.Equal(t, "runner-x", running.Status.Runner)

	// Another holder takes the Lease (and never renews it).
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var l coordinationv1.Lease
		if err := kube.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "run-lost-1"}, &l); err != nil {
			return err
		}
		require.Equal(t, "runner-x", ptr.Deref(l.Spec.HolderIdentity, ""))
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.RenewTime = ptr.To("thief"), &now
		return kube.Update(ctx, &l)
	}))
	f.waitEvent("lost-1", "LeaseLost")

	// The interrupted attempt recorded nothing; once the thief's Lease
	// expires, the Run is taken over and completes.
	got := f.succeeded("lost-1")
	assert.EqualValues(t, 2, got.Status.Attempts, statusJSON(got))
	assert.Equal(t, "runner-x", got.Status.Runner)
	assert.Contains(t, got.Status.Recovery, "took over from runner-x")
	cm, err := configMap(t, "lost")
	require.NoError(t, err)
	assert.Equal(t, "blue", cm.Data["color"])
	evs := f.waitEvent("lost-1", "Succeeded")
	assert.Equal(t, 1, countReason(evs, "Claimed"))
	assert.Equal(t, 1, countReason(evs, "TookOver"))
	assert.Zero(t, countReason(evs, "Failed"), "the lost attempt wrote no outcome: %v", evs)
}

func TestPolicy_BlockedRunFailsWithItsFindingsAndCreatesNothing(t *testing.T) {
	f := newFixture(t, "rt-policy")
	f.start("runner-policy")
	run := f.run("guarded-1", "guarded", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`)
	run.Spec.Kind = "prod"
	run.Spec.Policy = v1alpha1.Policy{Packs: []string{"kubernetes"},
		Settings: &apiextensionsv1.JSON{Raw: []byte(`{"levels":{"prod":"mandatory"}}`)}}
	f.create(run)

	got := f.finished("guarded-1")
	assert.Equal(t, v1alpha1.RunFailed, got.Status.Phase)
	assert.Equal(t, v1alpha1.ReasonPolicyBlocked, got.Status.Reason, statusJSON(got))
	assert.Contains(t, got.Status.Message, "namespace-network-policy")
	i := slices.IndexFunc(got.Status.Findings, func(f v1alpha1.Finding) bool { return f.Policy == "namespace-network-policy" })
	require.GreaterOrEqual(t, i, 0, statusJSON(got))
	assert.Equal(t, "slipway-kubernetes", got.Status.Findings[i].Pack)
	assert.Equal(t, "mandatory", got.Status.Findings[i].Enforcement)
	_, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), "ft-guarded", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the gate applied nothing: %v", err)
}

func TestInvalidSpec_FailsNamingTheFieldAndCreatesNothing(t *testing.T) {
	f := newFixture(t, "rt-invalid")
	f.create(f.run("invalid-1", "invalid", v1alpha1.OpUp, `{"Bogus":1,"Data":{"a":"b"}}`))
	f.start("runner-invalid")

	params := f.finished("invalid-1")
	assert.Equal(t, v1alpha1.RunFailed, params.Status.Phase)
	assert.Equal(t, v1alpha1.ReasonInvalidSpec, params.Status.Reason)
	assert.Contains(t, params.Status.Message, "spec.params")
	assert.Contains(t, params.Status.Message, "Bogus")
	assert.NotNil(t, params.Status.CompletionTime)

	// A program the runner does not have: TestUnknownDefinition_LeftForARunnerThatHasIt.

	_, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), "ft-invalid", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nothing is created: %v", err)
	entries, err := os.ReadDir(f.state)
	require.NoError(t, err)
	assert.Empty(t, entries, "the backend is untouched")
	evs := f.waitEvent("invalid-1", "Failed")
	assert.Equal(t, 1, countReason(evs, "Failed"))
}

func TestDrift_ReportsTheDriftedPropertyThenRemediates(t *testing.T) {
	f := newFixture(t, "rt-drift")
	f.start("runner-drift")
	f.create(f.run("drift-1", "drift", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`))
	f.succeeded("drift-1")

	ctx := context.Background()
	cm, err := configMap(t, "drift")
	require.NoError(t, err)
	cm.Data["color"] = "red"
	_, err = cluster.Client.CoreV1().ConfigMaps("ft-drift").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)

	f.create(f.run("drift-2", "drift", v1alpha1.OpDrift, `{"Data":{"color":"blue"}}`))
	got := f.succeeded("drift-2")
	require.Len(t, got.Status.Drift, 1, statusJSON(got))
	d := got.Status.Drift[0]
	assert.Equal(t, "kubernetes:core/v1:ConfigMap", d.Type)
	assert.Contains(t, d.URN, "settings")
	assert.Contains(t, d.Properties, "data.color", statusJSON(got))
	assert.False(t, got.Status.Remediated)
	assert.Contains(t, got.Status.Message, "data.color")
	cm, err = configMap(t, "drift")
	require.NoError(t, err)
	assert.Equal(t, "red", cm.Data["color"], "only reported")

	fix := f.run("drift-3", "drift", v1alpha1.OpDrift, `{"Data":{"color":"blue"}}`)
	fix.Spec.Remediate = true
	f.create(fix)
	got = f.succeeded("drift-3")
	require.Len(t, got.Status.Drift, 1, statusJSON(got))
	assert.True(t, got.Status.Remediated, statusJSON(got))
	cm, err = configMap(t, "drift")
	require.NoError(t, err)
	assert.Equal(t, "blue", cm.Data["color"], "corrected")
}

func TestDestroy_WithTheDefinitionGone_DestroysFromTheStack(t *testing.T) {
	f := newFixture(t, "rt-destroy")
	f.start("runner-destroy")
	f.create(f.run("gone-1", "gone", v1alpha1.OpUp, `{"Data":{"color":"blue"}}`))
	up := f.succeeded("gone-1")
	require.Equal(t, "fleettest/rt-destroy.gone", up.Status.Stack)
	_, err := configMap(t, "gone")
	require.NoError(t, err)
	stackFile := filepath.Join(f.state, ".pulumi", "stacks", "fleettest", "rt-destroy.gone.json")
	_, err = os.Stat(stackFile)
	require.NoError(t, err)

	destroy := f.run("gone-2", "gone", v1alpha1.OpDestroy, `{"Data":{"color":"blue"}}`)
	destroy.Spec.Definition = "retired"
	destroy.Spec.Stack = up.Status.Stack
	destroy.Spec.RemoveStack = true
	f.create(destroy)
	got := f.succeeded("gone-2")
	assert.Equal(t, "fleettest/rt-destroy.gone", got.Status.Stack)
	assert.GreaterOrEqual(t, got.Status.Changes["delete"], 2, statusJSON(got))
	assert.Contains(t, got.Status.Message, "removed")

	_, err = configMap(t, "gone")
	assert.True(t, apierrors.IsNotFound(err), "the ConfigMap is deleted: %v", err)
	_, err = os.Stat(stackFile)
	assert.ErrorIs(t, err, os.ErrNotExist, "the stack is removed from the backend")
}

func TestMessage_KeepsTheFirstLinesWithoutSecrets(t *testing.T) {
	secret := "s3cr3t-value"
	var b strings.Builder
	b.WriteString("automation: up failed: config " + secret + "\n\n")
	for i := range 20 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	m := message(errors.New(b.String()), []string{secret, ""})
	assert.NotContains(t, m, secret)
	assert.Contains(t, m, "config [secret]")
	assert.Len(t, strings.Split(m, "\n"), maxMessageLines)

	long := message(errors.New(strings.Repeat("é", maxMessageBytes)), nil)
	assert.LessOrEqual(t, len(long), maxMessageBytes+3)
	assert.True(t, strings.HasSuffix(long, "..."))
}

func TestReason_ClassifiesErrors(t *testing.T) {
	assert.Equal(t, v1alpha1.ReasonInvalidSpec, reason(&fleet.FieldError{Field: "spec.params", Err: errors.New("x")}))
	assert.Equal(t, v1alpha1.ReasonInvalidSpec, reason(fmt.Errorf("wrapped: %w", &stacks.InvalidError{Problems: []error{errors.New("x")}})))
	assert.Equal(t, v1alpha1.ReasonPolicyBlocked, reason(&automation.OpError{Op: "up", Err: &automation.PolicyBlockedError{Op: "up"}}))
	assert.Equal(t, v1alpha1.ReasonLocked, reason(&statestore.StackLockedError{Project: "p", Stack: "s"}))
	assert.Equal(t, v1alpha1.ReasonFailed, reason(errors.New("boom")))
}

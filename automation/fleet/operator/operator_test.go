package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/gitsource"
	"github.com/slipwayhq/slipway/automation/fleet/install"
	"github.com/slipwayhq/slipway/automation/fleet/operator/internal/jitter"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/stacks"
)

// One control plane for the package, started by the first test that needs
// it (with the CRDs applied) and stopped by TestMain.
var (
	clusterOnce sync.Once
	shared      *localk8s.Cluster
	sharedErr   error
	sharedLog   lockedBuffer
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localk8s: stop:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func cluster(t *testing.T) *localk8s.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		shared, sharedErr = localk8s.StartCluster(ctx, localk8s.WithLog(&sharedLog))
		if sharedErr == nil {
			sharedErr = applyCRDs(ctx, shared)
		}
	})
	require.NoError(t, sharedErr, "starting the control plane:\n%s", sharedLog.String())
	return shared
}

// applyCRDs creates the CRDs of ../install/crds and waits until they are
// established.
// applyCRDs installs the fleet's CRDs and waits until they are established.
func applyCRDs(ctx context.Context, c *localk8s.Cluster) error {
	crds, err := install.CRDs()
	if err != nil {
		return err
	}
	return install.Apply(ctx, c.Config, crds)
}

func testClient(c *localk8s.Cluster) (client.Client, error) {
	s, err := fleet.Scheme()
	if err != nil {
		return nil, err
	}
	return client.New(c.Config, client.Options{Scheme: s})
}

// tiny is a definition of the test registry: Check builds it without running
// anything.
type tinyParams struct {
	Image    string `json:"image"`
	Replicas int    `json:"replicas"`
}

var tiny = &stacks.Definition[tinyParams]{
	Name:    "tiny",
	Project: "tinyproj",
	Defaults: map[stacks.Kind]tinyParams{stacks.Dev: {Image: "nginx:1.27", Replicas: 1}, stacks.QA: {Image: "nginx:1.27", Replicas: 1},
		stacks.Staging: {Image: "nginx:1.27", Replicas: 2}, stacks.Prod: {Image: "nginx:1.27", Replicas: 3}, stacks.Ephemeral: {Image: "nginx:1.27", Replicas: 1}},
	Validate: func(e stacks.Env[tinyParams]) error {
		if e.Params.Replicas < 1 || e.Params.Replicas > 10 {
			return stacks.Errorf("Params.Replicas", "%d is out of range; use 1 to 10", e.Params.Replicas)
		}
		return nil
	},
	Run: func(*pulumi.Context, stacks.Env[tinyParams]) error { return nil },
}

var registry = fleet.Registry{Definitions: []stacks.Builder{tiny}}

// clock is the operator's clock in a test: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// fakeGit is the Git source: a commit and the parameters file's content.
type fakeGit struct {
	mu      sync.Mutex
	commit  string
	content string
	err     error
	calls   int
	last    gitsource.Source
}

func (g *fakeGit) Fetch(_ context.Context, s gitsource.Source) (gitsource.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.last = s
	if g.err != nil {
		return gitsource.Result{}, g.err
	}
	return gitsource.Result{Commit: g.commit, Content: []byte(g.content)}, nil
}

func (g *fakeGit) fail(err error) { g.mu.Lock(); defer g.mu.Unlock(); g.err = err }

func (g *fakeGit) source() gitsource.Source { g.mu.Lock(); defer g.mu.Unlock(); return g.last }

func (g *fakeGit) set(commit, content string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.commit, g.content = commit, content
}

func (g *fakeGit) count() int { g.mu.Lock(); defer g.mu.Unlock(); return g.calls }

// harness is one test's namespace, clients and operator.
type harness struct {
	t       *testing.T
	cluster *localk8s.Cluster
	c       client.Client
	ns      string
	clock   *clock
	git     *fakeGit

	mu     sync.Mutex
	seen   map[string]string // environment -> last poke value a pass finished with
	pokes  int
	cancel context.CancelFunc
	done   chan error
	health string
	log    *testLog
	// leaderNS, when set, holds the leader election Lease instead of ns.
	leaderNS string
	// wrap, when set, wraps the operator's transport to the API server.
	wrap func(http.RoundTripper) http.RoundTripper
}

// testLog writes the operator's log to the test's log until the test ends.
type testLog struct {
	mu     sync.Mutex
	t      *testing.T
	closed bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLog) close() { w.mu.Lock(); defer w.mu.Unlock(); w.closed = true }

const pokeAnnotation = "test.slipway.dev/poke"

var nsCount atomic.Int64

func newHarness(t *testing.T) *harness {
	t.Helper()
	c := cluster(t)
	cl, err := testClient(c)
	require.NoError(t, err)
	h := &harness{t: t, cluster: c, c: cl, clock: &clock{t: time.Now().Truncate(time.Second)},
		git: &fakeGit{commit: strings.Repeat("1", 40), content: "{}"}, seen: map[string]string{}, log: &testLog{t: t}}
	t.Cleanup(h.log.close) // runs after the operator stopped
	h.ns = strings.ToLower(strings.ReplaceAll(t.Name(), "_", "-"))
	if len(h.ns) > 50 {
		h.ns = h.ns[:50]
	}
	h.ns += fmt.Sprintf("-%d", nsCount.Add(1)) // -count=N runs while earlier namespaces terminate
	require.NoError(t, cl.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}))
	t.Cleanup(func() {
		// Finalizers would keep the namespace: drop them, then delete it.
		var envs v1alpha1.EnvironmentList
		if err := cl.List(context.Background(), &envs, client.InNamespace(h.ns)); err != nil {
			t.Errorf("listing environments: %v", err)
		}
		for i := range envs.Items {
			e := &envs.Items[i]
			if err := cl.Patch(context.Background(), e, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`))); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("removing finalizers of %s: %v", e.Name, err)
			}
		}
		err := cl.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", h.ns, err)
		}
	})
	return h
}

// start runs the operator (Run, with leader election in the test's
// namespace) until the test ends or stop.
func (h *harness) start(o Options) {
	h.t.Helper()
	o.Git = h.git.Fetch
	o.Now = h.clock.Now
	if o.AllowRunnerCredentials == nil {
		// The test Environments give no target kubeconfig.
		o.AllowRunnerCredentials = []string{h.ns}
	}
	o.Logger = slog.New(slog.NewTextHandler(h.log, nil))
	o.onReconciled = func(e *v1alpha1.Environment) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.seen[e.Name] = e.Annotations[pokeAnnotation]
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	le := h.ns
	if h.leaderNS != "" {
		le = h.leaderNS
	}
	m := ManagerOptions{LeaderElection: true, LeaderElectionNamespace: le, Namespaces: []string{h.ns},
		LeaseDuration: 6 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: time.Second,
		HealthProbeBindAddress: h.health}
	cfg := h.cluster.Config
	if h.wrap != nil {
		cfg = rest.CopyConfig(cfg)
		cfg.Wrap(h.wrap)
	}
	go func() { h.done <- Run(ctx, cfg, o, m) }()
	h.t.Cleanup(h.stop)
}

// stop stops the operator and checks that it stopped cleanly.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		assert.NoError(h.t, err, "operator stopped with an error")
	case <-time.After(time.Minute):
		h.t.Error("the operator did not stop within a minute")
	}
}

// eventually polls cond until it holds or 60s passed.
func (h *harness) eventually(cond func() bool, format string, args ...any) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) newEnv(name, params string) *v1alpha1.Environment {
	env := &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{Definition: "tiny", Kind: "dev", Backend: v1alpha1.Backend{URL: "file:///var/slipway/state"}}}}
	if params != "" {
		env.Spec.Params = &apiextensionsv1.JSON{Raw: []byte(params)}
	}
	return env
}

func (h *harness) create(env *v1alpha1.Environment) {
	h.t.Helper()
	require.NoError(h.t, h.c.Create(h.ctx(), env))
}

func (h *harness) env(name string) *v1alpha1.Environment {
	h.t.Helper()
	env := &v1alpha1.Environment{}
	require.NoError(h.t, h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, env))
	return env
}

// waitEnv waits until cond holds for the Environment and returns it.
func (h *harness) waitEnv(name string, cond func(*v1alpha1.Environment) bool, what string) *v1alpha1.Environment {
	h.t.Helper()
	var env *v1alpha1.Environment
	h.eventually(func() bool {
		env = &v1alpha1.Environment{}
		if err := h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, env); err != nil {
			return false
		}
		return cond(env)
	}, "environment %s: %s; last status: %s", name, what, statusJSON(env))
	return env
}

func statusJSON(env *v1alpha1.Environment) string {
	if env == nil {
		return "none"
	}
	b, _ := json.MarshalIndent(env.Status, "", " ")
	return string(b)
}

// update changes an Environment, retrying on conflicts.
func (h *harness) update(name string, change func(*v1alpha1.Environment)) {
	h.t.Helper()
	require.NoError(h.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		env := h.env(name)
		change(env)
		return h.c.Update(h.ctx(), env)
	}))
}

// poke changes an annotation of the Environment and waits until a pass of
// the reconciler finished with it: everything that pass did is then done.
func (h *harness) poke(name string) {
	h.t.Helper()
	h.mu.Lock()
	h.pokes++
	v := strconv.Itoa(h.pokes)
	h.mu.Unlock()
	h.update(name, func(e *v1alpha1.Environment) { metav1.SetMetaDataAnnotation(&e.ObjectMeta, pokeAnnotation, v) })
	h.eventually(func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.seen[name] == v
	}, "a pass over %s with poke %s", name, v)
}

// runs lists an Environment's Runs by name.
func (h *harness) runs(env string) []v1alpha1.Run {
	h.t.Helper()
	var list v1alpha1.RunList
	require.NoError(h.t, h.c.List(h.ctx(), &list, client.InNamespace(h.ns), client.MatchingLabels{LabelEnvironment: env}))
	slices.SortFunc(list.Items, func(a, b v1alpha1.Run) int { return strings.Compare(a.Name, b.Name) })
	return list.Items
}

func runNames(runs []v1alpha1.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Name)
	}
	return out
}

func (h *harness) waitRun(name string) *v1alpha1.Run {
	h.t.Helper()
	run := &v1alpha1.Run{}
	h.eventually(func() bool {
		return h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, run) == nil
	}, "run %s to exist", name)
	return run
}

// finish plays the runner: the Run ends in phase with reason and message
// at the clock's time; change sets the rest of its status.
func (h *harness) finish(name string, phase v1alpha1.RunPhase, reason, msg string, change func(*v1alpha1.RunStatus)) {
	h.t.Helper()
	require.NoError(h.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		run := &v1alpha1.Run{}
		if err := h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, run); err != nil {
			return err
		}
		run.Status = v1alpha1.RunStatus{Phase: phase, Reason: reason, Message: msg, Runner: "test", Attempts: 1,
			CompletionTime: ptr.To(metav1.NewTime(h.clock.Now()))}
		if change != nil {
			change(&run.Status)
		}
		return h.c.Status().Update(h.ctx(), run)
	}))
}

func cond(env *v1alpha1.Environment, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(env.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{Type: typ}
}

func hasCond(typ string, status metav1.ConditionStatus, reason string) func(*v1alpha1.Environment) bool {
	return func(e *v1alpha1.Environment) bool {
		c := cond(e, typ)
		return c.Status == status && c.Reason == reason && c.ObservedGeneration == e.Generation
	}
}

// waitEvents waits until the Environment has Events with all the reasons.
func (h *harness) waitEvents(env string, reasons ...string) {
	h.t.Helper()
	var got []string
	h.eventually(func() bool {
		list, err := h.cluster.Client.EventsV1().Events(h.ns).List(h.ctx(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		got = got[:0]
		for _, e := range list.Items {
			if e.Regarding.Kind == "Environment" && e.Regarding.Name == env {
				got = append(got, e.Reason)
				assert.Equal(h.t, Name, e.ReportingController)
			}
		}
		for _, r := range reasons {
			if !slices.Contains(got, r) {
				return false
			}
		}
		return true
	}, "events %v of %s; got %v", reasons, env, got)
}

func params(t *testing.T, run *v1alpha1.Run) map[string]any {
	t.Helper()
	var m map[string]any
	require.NotNil(t, run.Spec.Params)
	require.NoError(t, json.Unmarshal(run.Spec.Params.Raw, &m))
	return m
}

// An Environment gets the finalizer and an up Run with its resolved
// inputs (parameters merged with the Git source's file, its commit);
// success makes it Ready with the outputs; the source is polled at its
// interval, and a new commit makes a new up.
func TestUpRunFromResolvedInputs_ReadyThenNewCommit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c1, c2 := strings.Repeat("a", 40), strings.Repeat("b", 40)
	h.git.set(c1, "replicas: 3\n")
	h.start(Options{Registry: registry})
	env := h.newEnv("web", `{"image":"nginx:1.27"}`)
	env.Spec.Source = &v1alpha1.GitSource{URL: "https://git.example/params.git", Ref: v1alpha1.GitRef{Branch: "main"},
		Path: "envs/web.yaml", Interval: &metav1.Duration{Duration: time.Minute}, SecretRef: "git-creds"}
	require.NoError(t, h.c.Create(h.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-creds", Namespace: h.ns},
		Data: map[string][]byte{"username": []byte("bot"), "password": []byte("s3cret-token")}}))
	h.create(env)

	run := h.waitRun("web-1")
	env = h.env("web")
	assert.Contains(t, env.Finalizers, v1alpha1.Finalizer)
	assert.Equal(t, v1alpha1.OpUp, run.Spec.Operation)
	assert.Equal(t, "web", run.Spec.Environment)
	assert.Equal(t, "web", run.Labels[LabelEnvironment])
	assert.True(t, metav1.IsControlledBy(run, env), "the Environment controls its Run")
	assert.Equal(t, c1, run.Spec.Commit)
	assert.Equal(t, map[string]any{"image": "nginx:1.27", "replicas": float64(3)}, params(t, run))
	want := env.Spec.Inputs.DeepCopy()
	want.Params = run.Spec.Params
	assert.Equal(t, registry.Revision(*want, c1), run.Spec.Revision, "the revision has the definition's version")
	assert.Equal(t, "tinyproj/"+h.ns+".web", run.Spec.Stack, "the stack is per namespace")
	assert.Equal(t, int32(3600), *run.Spec.TTLSecondsAfterFinished)
	src := h.git.source()
	assert.NotNil(t, src.Auth, "credentials from spec.source.secretRef")
	src.Auth = nil
	assert.Equal(t, gitsource.Source{URL: "https://git.example/params.git", Branch: "main", Path: "envs/web.yaml"}, src)
	env = h.waitEnv("web", hasCond(v1alpha1.ConditionReconciling, metav1.ConditionTrue, ReasonRunning), "Reconciling")
	assert.Equal(t, "web-1", env.Status.ActiveRun)
	assert.Equal(t, int64(1), env.Status.RunCount)
	assert.Equal(t, c1, env.Status.SourceRevision)
	assert.Equal(t, run.Spec.Revision, env.Status.Revision)
	assert.Equal(t, metav1.ConditionUnknown, cond(env, v1alpha1.ConditionReady).Status)

	h.finish("web-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "applied", func(s *v1alpha1.RunStatus) {
		s.Outputs = map[string]string{"url": "http://web.example"}
		s.Stack = "tinyproj/" + h.ns + ".web"
	})
	env = h.waitEnv("web", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	assert.Equal(t, run.Spec.Revision, env.Status.LastAppliedRevision)
	assert.Equal(t, c1, env.Status.LastAppliedCommit)
	assert.Equal(t, map[string]string{"url": "http://web.example"}, env.Status.Outputs)
	assert.Empty(t, env.Status.ActiveRun)
	require.NotNil(t, env.Status.LastRun)
	assert.Equal(t, v1alpha1.RunRef{Name: "web-1", Operation: v1alpha1.OpUp, Phase: v1alpha1.RunSucceeded, Reason: "Succeeded",
		Message: "applied", CompletionTime: env.Status.LastRun.CompletionTime}, *env.Status.LastRun)
	assert.Equal(t, ReasonIdle, cond(env, v1alpha1.ConditionReconciling).Reason)
	assert.Equal(t, metav1.ConditionFalse, cond(env, v1alpha1.ConditionStalled).Status)

	// Within the interval the source is not read again; after it, the same
	// commit changes nothing.
	calls := h.git.count()
	h.poke("web")
	assert.Equal(t, calls, h.git.count(), "the source is read at most once per interval")
	h.clock.Advance(time.Minute)
	h.poke("web")
	assert.Equal(t, calls+1, h.git.count())
	assert.Len(t, h.runs("web"), 1)

	// A new commit: a new up.
	h.git.set(c2, "replicas: 4\n")
	h.clock.Advance(time.Minute)
	h.poke("web")
	run2 := h.waitRun("web-2")
	assert.Equal(t, v1alpha1.OpUp, run2.Spec.Operation)
	assert.Equal(t, c2, run2.Spec.Commit)
	assert.Equal(t, float64(4), params(t, run2)["replicas"])
	assert.NotEqual(t, run.Spec.Revision, run2.Spec.Revision)
	env = h.env("web")
	assert.Equal(t, c2, env.Status.SourceRevision)
	assert.Equal(t, c1, env.Status.LastAppliedCommit)
	h.waitEvents("web", EventRunCreated, EventRunSucceeded, EventReady, EventSourceUpdated)
}

// A spec change while a Run is in flight makes no second Run; when the
// first finishes, exactly one new up applies the new revision.
func TestOneActiveRunAtATime(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	h.create(h.newEnv("one", `{"replicas":1}`))
	run1 := h.waitRun("one-1")

	h.update("one", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":2}`) })
	gen := h.env("one").Generation
	env := h.waitEnv("one", func(e *v1alpha1.Environment) bool { return e.Status.ObservedGeneration == gen }, "the new generation observed")
	h.poke("one")
	env = h.env("one")
	assert.Equal(t, int64(1), env.Status.RunCount)
	assert.Equal(t, "one-1", env.Status.ActiveRun)
	assert.Equal(t, []string{"one-1"}, runNames(h.runs("one")))
	newRevision := env.Status.Revision
	assert.NotEqual(t, run1.Spec.Revision, newRevision, "the revision follows the spec while the Run is in flight")

	h.finish("one-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	run2 := h.waitRun("one-2")
	assert.Equal(t, newRevision, run2.Spec.Revision)
	assert.Equal(t, float64(2), params(t, run2)["replicas"])
	h.poke("one")
	assert.Equal(t, []string{"one-1", "one-2"}, runNames(h.runs("one")))
	env = h.env("one")
	assert.Equal(t, run1.Spec.Revision, env.Status.LastAppliedRevision)
	assert.Equal(t, "one-2", env.Status.ActiveRun)

	// The Run in flight vanished before it finished: it is made again.
	require.NoError(t, h.c.Delete(h.ctx(), run2))
	h.eventually(func() bool {
		r := &v1alpha1.Run{}
		return h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: "one-2"}, r) == nil && r.UID != run2.UID
	}, "one-2 to be created again")
	assert.Equal(t, newRevision, h.waitRun("one-2").Spec.Revision)
	h.poke("one")
	assert.Equal(t, []string{"one-1", "one-2"}, runNames(h.runs("one")))
}

// Failed Runs back off (the wait doubles) and stall after MaxFailures
// with reason RetriesExhausted; the retry annotation clears that and
// makes a new Run.
func TestFailuresBackOffThenStall_RetryAnnotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry, Backoff: 10 * time.Second, MaxBackoff: time.Minute, MaxFailures: 3})
	h.create(h.newEnv("flaky", ""))
	h.waitRun("flaky-1")

	h.finish("flaky-1", v1alpha1.RunFailed, v1alpha1.ReasonFailed, "boom 1", nil)
	env := h.waitEnv("flaky", func(e *v1alpha1.Environment) bool { return e.Status.Failures == 1 }, "one failure")
	require.NotNil(t, env.Status.NextAttempt)
	assert.Equal(t, h.clock.Now().Add(10*time.Second), env.Status.NextAttempt.Time)
	assert.Equal(t, v1alpha1.ReasonFailed, cond(env, v1alpha1.ConditionReady).Reason)
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "boom 1")
	assert.Equal(t, ReasonBackingOff, cond(env, v1alpha1.ConditionReconciling).Reason)
	h.clock.Advance(9 * time.Second)
	h.poke("flaky")
	assert.Len(t, h.runs("flaky"), 1, "no Run during the back-off")

	h.clock.Advance(time.Second)
	h.poke("flaky")
	h.waitRun("flaky-2")
	h.finish("flaky-2", v1alpha1.RunFailed, v1alpha1.ReasonLocked, "boom 2", nil)
	env = h.waitEnv("flaky", func(e *v1alpha1.Environment) bool { return e.Status.Failures == 2 }, "two failures")
	assert.Equal(t, h.clock.Now().Add(20*time.Second), env.Status.NextAttempt.Time, "the back-off doubles")

	h.clock.Advance(20 * time.Second)
	h.poke("flaky")
	h.waitRun("flaky-3")
	h.finish("flaky-3", v1alpha1.RunFailed, v1alpha1.ReasonFailed, "boom 3", nil)
	env = h.waitEnv("flaky", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, ReasonRetriesExhausted), "Stalled")
	msg := cond(env, v1alpha1.ConditionStalled).Message
	assert.Contains(t, msg, "3 runs failed in a row")
	assert.Contains(t, msg, "boom 3")
	assert.Contains(t, msg, v1alpha1.RetryAnnotation)
	assert.Equal(t, ReasonStalled, cond(env, v1alpha1.ConditionReconciling).Reason)
	h.clock.Advance(time.Hour)
	h.poke("flaky")
	assert.Len(t, h.runs("flaky"), 3, "no Run while Stalled")

	h.update("flaky", func(e *v1alpha1.Environment) {
		metav1.SetMetaDataAnnotation(&e.ObjectMeta, v1alpha1.RetryAnnotation, "try-again")
	})
	h.waitRun("flaky-4")
	env = h.waitEnv("flaky", hasCond(v1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonRetryRequested), "unstalled")
	assert.Equal(t, "try-again", env.Status.RetryToken)
	assert.Zero(t, env.Status.Failures)
	assert.Nil(t, env.Status.NextAttempt)
	h.waitEvents("flaky", EventRunCreated, EventRunFailed, EventStalled, EventRetry)
}

// A Run blocked by policy stalls the Environment at once (PolicyBlocked);
// a spec change clears it and makes a new Run. A Run that found the spec
// invalid stalls it too.
func TestPolicyBlocked_SpecChangeRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	h.create(h.newEnv("guarded", `{"replicas":1}`))
	h.waitRun("guarded-1")
	h.finish("guarded-1", v1alpha1.RunFailed, v1alpha1.ReasonPolicyBlocked, "slipway-baseline/no-latest-tag: image has no tag", nil)
	env := h.waitEnv("guarded", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonPolicyBlocked), "Stalled")
	assert.Equal(t, metav1.ConditionTrue, cond(env, v1alpha1.ConditionPolicyBlocked).Status)
	assert.Contains(t, cond(env, v1alpha1.ConditionPolicyBlocked).Message, "no-latest-tag")
	assert.Equal(t, metav1.ConditionFalse, cond(env, v1alpha1.ConditionReady).Status)
	assert.Equal(t, v1alpha1.ReasonPolicyBlocked, cond(env, v1alpha1.ConditionReady).Reason)
	h.clock.Advance(time.Hour)
	h.poke("guarded")
	assert.Len(t, h.runs("guarded"), 1, "no retry: policy would block it again")

	h.update("guarded", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":2}`) })
	h.waitRun("guarded-2")
	env = h.waitEnv("guarded", hasCond(v1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonSpecChanged), "unstalled")

	h.finish("guarded-2", v1alpha1.RunFailed, v1alpha1.ReasonInvalidSpec, "Env.Kubeconfig: is empty", nil)
	env = h.waitEnv("guarded", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec), "Stalled")
	assert.Contains(t, cond(env, v1alpha1.ConditionStalled).Message, "Env.Kubeconfig")
	h.waitEvents("guarded", EventPolicyBlocked, EventStalled, EventRunFailed)
}

// An invalid spec is refused before any Run: Ready False and Stalled with
// reason InvalidSpec, the message naming the field; fixing it makes a Run.
// Deleting an Environment that never ran destroys nothing.
func TestInvalidSpec_NoRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	unknown := h.newEnv("noprog", "")
	unknown.Spec.Definition = "nope"
	h.create(unknown)
	h.create(h.newEnv("badparam", `{"replicas":1,"bogus":true}`))

	env := h.waitEnv("noprog", hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec), "Stalled")
	assert.Equal(t, v1alpha1.ReasonInvalidSpec, cond(env, v1alpha1.ConditionReady).Reason)
	assert.Equal(t, metav1.ConditionFalse, cond(env, v1alpha1.ConditionReady).Status)
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "spec.definition")
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, `"nope"`)
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "tiny", "the message lists the definitions")

	env = h.waitEnv("badparam", hasCond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec), "InvalidSpec")
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "spec.params")
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "bogus")
	h.poke("noprog")
	h.poke("badparam")
	assert.Empty(t, h.runs("noprog"))
	assert.Empty(t, h.runs("badparam"))
	assert.Zero(t, h.env("badparam").Status.RunCount)

	h.update("badparam", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":11}`) })
	env = h.waitEnv("badparam", func(e *v1alpha1.Environment) bool {
		return hasCond(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec)(e) &&
			strings.Contains(cond(e, v1alpha1.ConditionReady).Message, "Params.Replicas")
	}, "the definition's check names the field")
	h.update("badparam", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":2}`) })
	h.waitRun("badparam-1")
	env = h.waitEnv("badparam", hasCond(v1alpha1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing), "Progressing")
	assert.Equal(t, metav1.ConditionFalse, cond(env, v1alpha1.ConditionStalled).Status)

	require.NoError(t, h.c.Delete(h.ctx(), h.env("noprog")))
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: "noprog"}, &v1alpha1.Environment{}))
	}, "noprog to go without a destroy")
	assert.Empty(t, h.runs("noprog"))
	h.waitEvents("badparam", EventInvalidSpec, EventStalled, EventRunCreated)
	h.waitEvents("noprog", EventInvalidSpec, EventDestroyed)
}

// Drift checks run at their interval; drift found and not remediated is
// Drifted True naming the property, remediated drift is Drifted False.
func TestDriftChecks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	env := h.newEnv("drifty", "")
	env.Spec.Drift = &v1alpha1.DriftCheck{Interval: metav1.Duration{Duration: 10 * time.Minute}}
	h.create(env)
	h.waitRun("drifty-1")
	h.finish("drifty-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	env = h.waitEnv("drifty", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	// The first check comes at the Environment's slot (package jitter), ½ to
	// 1½ intervals after the up; the later ones an interval apart.
	due := jitter.Due(h.ns+"/drifty", h.clock.Now(), h.clock.Now(), 10*time.Minute)
	require.False(t, due.Before(h.clock.Now().Add(5*time.Minute)))
	h.clock.Set(due.Add(-time.Second))
	h.poke("drifty")
	assert.Len(t, h.runs("drifty"), 1, "no drift check before the slot")

	h.clock.Advance(time.Second)
	h.poke("drifty")
	run := h.waitRun("drifty-2")
	assert.Equal(t, v1alpha1.OpDrift, run.Spec.Operation)
	assert.False(t, run.Spec.Remediate)
	assert.Equal(t, env.Status.LastAppliedRevision, run.Spec.Revision)
	drift := []v1alpha1.DriftedResource{{URN: "urn:pulumi:drifty::tinyproj::kubernetes:apps/v1:Deployment::web",
		Type: "kubernetes:apps/v1:Deployment", Properties: []string{"spec.replicas"}}}
	h.finish("drifty-2", v1alpha1.RunSucceeded, v1alpha1.ReasonDriftDetected, "", func(s *v1alpha1.RunStatus) { s.Drift = drift })
	env = h.waitEnv("drifty", hasCond(v1alpha1.ConditionDrifted, metav1.ConditionTrue, v1alpha1.ReasonDriftDetected), "Drifted")
	assert.Contains(t, cond(env, v1alpha1.ConditionDrifted).Message, "kubernetes:apps/v1:Deployment web: spec.replicas")
	require.NotNil(t, env.Status.LastDriftCheck)
	assert.Equal(t, h.clock.Now(), env.Status.LastDriftCheck.Time)
	assert.Equal(t, metav1.ConditionTrue, cond(env, v1alpha1.ConditionReady).Status)

	// Remediation on: no up (the revision is the same), the next check corrects.
	h.update("drifty", func(e *v1alpha1.Environment) { e.Spec.Drift.Remediate = true })
	h.poke("drifty")
	assert.Len(t, h.runs("drifty"), 2)
	h.clock.Advance(10 * time.Minute)
	h.poke("drifty")
	run = h.waitRun("drifty-3")
	assert.Equal(t, v1alpha1.OpDrift, run.Spec.Operation)
	assert.True(t, run.Spec.Remediate)
	h.finish("drifty-3", v1alpha1.RunSucceeded, v1alpha1.ReasonRemediated, "", func(s *v1alpha1.RunStatus) {
		s.Drift, s.Remediated = drift, true
	})
	env = h.waitEnv("drifty", hasCond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonRemediated), "Remediated")
	assert.Contains(t, cond(env, v1alpha1.ConditionDrifted).Message, "spec.replicas")

	h.clock.Advance(10 * time.Minute)
	h.poke("drifty")
	h.waitRun("drifty-4")
	h.finish("drifty-4", v1alpha1.RunSucceeded, v1alpha1.ReasonNoDrift, "", nil)
	h.waitEnv("drifty", hasCond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonNoDrift), "NoDrift")
	h.waitEvents("drifty", EventDriftDetected, EventDriftRemediated)
}

// Deletion waits for the Run in flight, then destroys (retrying a failed
// destroy after its back-off) and removes the finalizer.
func TestDeletion_WaitsThenDestroys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry, Backoff: 30 * time.Second})
	h.create(h.newEnv("doomed", ""))
	h.waitRun("doomed-1")
	require.NoError(t, h.c.Delete(h.ctx(), h.env("doomed")))
	h.waitEnv("doomed", func(e *v1alpha1.Environment) bool { return !e.DeletionTimestamp.IsZero() }, "deleting")
	h.poke("doomed")
	assert.Len(t, h.runs("doomed"), 1, "the destroy waits for the Run in flight")

	h.finish("doomed-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", func(s *v1alpha1.RunStatus) { s.Stack = "tinyproj/doomed" })
	run := h.waitRun("doomed-2")
	assert.Equal(t, v1alpha1.OpDestroy, run.Spec.Operation)
	assert.True(t, run.Spec.RemoveStack)
	assert.Equal(t, "tinyproj/doomed", run.Spec.Stack)
	assert.Equal(t, "tiny", run.Spec.Definition)

	h.finish("doomed-2", v1alpha1.RunFailed, v1alpha1.ReasonLocked, "stack is locked", nil)
	h.waitEnv("doomed", func(e *v1alpha1.Environment) bool { return e.Status.Failures == 1 }, "a failed destroy")
	h.poke("doomed")
	assert.Len(t, h.runs("doomed"), 2, "the destroy backs off")
	h.clock.Advance(30 * time.Second)
	h.poke("doomed")
	h.waitRun("doomed-3")
	h.finish("doomed-3", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: "doomed"}, &v1alpha1.Environment{}))
	}, "the Environment to go")
	h.waitEvents("doomed", EventDestroyed)
}

// A restarted operator whose registry no longer has the definition still
// destroys the stack from status.stack; the leader election Lease moves
// from one operator to the next, and the health endpoints answer.
func TestDestroyWithoutDefinition_AfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.health = freeAddr(t)
	h.start(Options{Registry: registry})
	h.create(h.newEnv("orphan", ""))
	h.waitRun("orphan-1")
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + h.health + path)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	lease := &coordinationv1.Lease{}
	require.NoError(t, h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: Name}, lease))
	require.NotNil(t, lease.Spec.HolderIdentity)
	first := *lease.Spec.HolderIdentity
	h.finish("orphan-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("orphan", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	h.stop()

	h.health = ""
	h.start(Options{Registry: fleet.Registry{}})
	h.eventually(func() bool {
		l := &coordinationv1.Lease{}
		return h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: Name}, l) == nil &&
			l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" && *l.Spec.HolderIdentity != first
	}, "the new operator to lead")
	env := h.waitEnv("orphan", hasCond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec), "the definition is gone")
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, `no definition "tiny"`)
	require.NoError(t, h.c.Delete(h.ctx(), env))
	run := h.waitRun("orphan-2")
	assert.Equal(t, v1alpha1.OpDestroy, run.Spec.Operation)
	assert.Equal(t, "tinyproj/"+h.ns+".orphan", run.Spec.Stack)
	assert.True(t, run.Spec.RemoveStack)
	h.finish("orphan-2", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: "orphan"}, &v1alpha1.Environment{}))
	}, "the Environment to go")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// spec.ttl deletes the Environment (Event Expired), which destroys it.
func TestTTL_ExpiresThenDestroys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	env := h.newEnv("pr-7", "")
	env.Spec.TTL = &metav1.Duration{Duration: time.Hour}
	h.create(env)
	h.waitRun("pr-7-1")
	env = h.waitEnv("pr-7", func(e *v1alpha1.Environment) bool { return e.Status.ExpiresAt != nil }, "expiresAt")
	assert.Equal(t, env.CreationTimestamp.Add(time.Hour), env.Status.ExpiresAt.Time)
	h.finish("pr-7-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("pr-7", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	h.poke("pr-7")
	assert.True(t, h.env("pr-7").DeletionTimestamp.IsZero(), "not expired yet")

	h.clock.Set(env.Status.ExpiresAt.Time)
	h.poke("pr-7")
	h.waitEnv("pr-7", func(e *v1alpha1.Environment) bool { return !e.DeletionTimestamp.IsZero() }, "deleted by its TTL")
	run := h.waitRun("pr-7-2")
	assert.Equal(t, v1alpha1.OpDestroy, run.Spec.Operation)
	h.finish("pr-7-2", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.eventually(func() bool {
		return apierrors.IsNotFound(h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: "pr-7"}, &v1alpha1.Environment{}))
	}, "the Environment to go")
	h.waitEvents("pr-7", EventExpired, EventDestroyed)
}

// Finished Runs are deleted RunTTL after they finished; a Run in flight
// stays.
func TestRunTTL_DeletesFinishedRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry, RunTTL: time.Minute})
	h.create(h.newEnv("short", `{"replicas":1}`))
	run := h.waitRun("short-1")
	assert.Equal(t, int32(60), *run.Spec.TTLSecondsAfterFinished)
	h.finish("short-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("short", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	h.update("short", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":2}`) })
	h.waitRun("short-2")

	h.clock.Advance(time.Minute)
	for _, name := range []string{"short-2", "short-1"} {
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			r := &v1alpha1.Run{}
			if err := h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, r); err != nil {
				return err
			}
			metav1.SetMetaDataAnnotation(&r.ObjectMeta, pokeAnnotation, "ttl")
			return h.c.Update(h.ctx(), r)
		}))
	}
	h.eventually(func() bool {
		err := h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: "short-1"}, &v1alpha1.Run{})
		return apierrors.IsNotFound(err)
	}, "short-1 to be deleted after its TTL")
	assert.Equal(t, []string{"short-2"}, runNames(h.runs("short")), "the Run in flight stays")
}

// A source that cannot be read: Ready False reason SourceFailed while
// nothing was applied, Event SourceFailed, no Run; once it reads, a Run.
func TestSourceFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.git.fail(errors.New("branch main not found in https://git.example/params.git"))
	h.start(Options{Registry: registry})
	env := h.newEnv("src", "")
	env.Spec.Source = &v1alpha1.GitSource{URL: "https://git.example/params.git", Ref: v1alpha1.GitRef{Branch: "main"}, Path: "p.yaml"}
	h.create(env)
	env = h.waitEnv("src", hasCond(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonSourceFailed), "SourceFailed")
	assert.Contains(t, cond(env, v1alpha1.ConditionReady).Message, "branch main not found")
	h.poke("src")
	assert.Empty(t, h.runs("src"))
	h.waitEvents("src", EventSourceFailed)

	h.git.fail(nil)
	h.git.set(strings.Repeat("c", 40), "replicas: 2")
	h.clock.Advance(DefaultSourceInterval)
	h.poke("src")
	run := h.waitRun("src-1")
	assert.Equal(t, strings.Repeat("c", 40), run.Spec.Commit)
}

// spec.suspend stops new Runs until it is cleared.
func TestSuspend(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	env := h.newEnv("paused", "")
	env.Spec.Suspend = true
	h.create(env)
	h.waitEnv("paused", hasCond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, ReasonSuspended), "Suspended")
	h.poke("paused")
	assert.Empty(t, h.runs("paused"))
	h.update("paused", func(e *v1alpha1.Environment) { e.Spec.Suspend = false })
	h.waitRun("paused-1")
}

// A Run left by an earlier Environment of the same name is not taken for
// this one's: the next name is used.
func TestForeignRunNameSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old := &v1alpha1.Run{ObjectMeta: metav1.ObjectMeta{Name: "again-1", Namespace: h.ns, Labels: map[string]string{LabelEnvironment: "again"}},
		Spec: v1alpha1.RunSpec{Environment: "again", Operation: v1alpha1.OpUp, Inputs: h.newEnv("again", "").Spec.Inputs}}
	require.NoError(t, h.c.Create(h.ctx(), old))
	h.finish("again-1", v1alpha1.RunFailed, v1alpha1.ReasonFailed, "from an earlier Environment", nil)
	h.start(Options{Registry: registry})
	h.create(h.newEnv("again", ""))
	run := h.waitRun("again-2")
	env := h.waitEnv("again", func(e *v1alpha1.Environment) bool { return e.Status.ActiveRun == "again-2" }, "again-2 active")
	assert.True(t, metav1.IsControlledBy(run, env))
	assert.Nil(t, env.Status.LastRun, "the foreign Run is not folded")
	assert.Zero(t, env.Status.Failures)
}

// Unit: the drift description names type, name and properties.
func TestDescribeDrift(t *testing.T) {
	got := describeDrift([]v1alpha1.DriftedResource{
		{URN: "urn:pulumi:dev::p::kubernetes:core/v1:ConfigMap::settings", Type: "kubernetes:core/v1:ConfigMap", Properties: []string{"data.a", "data.b"}},
		{URN: "urn:pulumi:dev::p::kubernetes:apps/v1:Deployment::web", Type: "kubernetes:apps/v1:Deployment"},
	})
	assert.Equal(t, "kubernetes:core/v1:ConfigMap settings: data.a, data.b; kubernetes:apps/v1:Deployment web", got)
}

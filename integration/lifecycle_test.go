package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/review"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

func env(name string, kind stacks.Kind, greeting string) web.Environment {
	return web.Environment{Name: name, Kind: kind, Kubeconfig: cluster.Kubeconfig,
		Params: web.Params{App: web.App{Settings: map[string]string{"GREETING": greeting}}}}
}

func program(t *testing.T, e web.Environment) automation.Program {
	t.Helper()
	p, err := web.Definition.Program(e)
	require.NoError(t, err)
	return p
}

// destroyAfter destroys and removes the environments' stacks when the test
// ends (those the backend still holds).
func destroyAfter(t *testing.T, eng *automation.Engine, names ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for _, n := range names {
			st, err := eng.SelectStack(ctx, automation.Program{Project: web.Project, Stack: n, Run: func(*pulumi.Context) error { return nil }, Plugins: []automation.Plugin{automation.KubernetesPlugin}})
			if automation.IsUnknownStack(err) {
				continue
			}
			if err == nil {
				_, err = st.Destroy(ctx, optdestroy.RemoveStack())
			}
			if err != nil {
				t.Errorf("cleanup %s: %v", n, err)
			}
		}
	})
}

func greeting(t *testing.T, ns string) string {
	t.Helper()
	cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	return cm.Data["GREETING"]
}

func namespaceGone(ns string) func() bool {
	return func() bool {
		_, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
}

func TestDrift_ReportedPerPropertyAndRemediated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "drift")
	st, err := eng.UpsertStack(ctx, program(t, env("drift", stacks.Dev, "hello")))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)

	clean, err := st.CheckDrift(ctx)
	require.NoError(t, err)
	assert.False(t, clean.Found(), "no drift right after up: %+v", clean.Resources)

	cm, err := cluster.Client.CoreV1().ConfigMaps("slipway-drift").Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["GREETING"] = "edited"
	cm.Data["EXTRA"] = "added"
	_, err = cluster.Client.CoreV1().ConfigMaps("slipway-drift").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)

	// A check does not write the state: asking twice finds the drift twice.
	for i := 0; i < 2; i++ {
		d, err := st.CheckDrift(ctx)
		require.NoError(t, err)
		require.True(t, d.Found(), "check %d", i)
	}

	d, err := st.CheckDrift(ctx, optdrift.Remediate())
	require.NoError(t, err)
	require.True(t, d.Found())
	require.Len(t, d.Resources, 1)
	assert.Equal(t, "kubernetes:core/v1:ConfigMap", d.Resources[0].Type)
	assert.ElementsMatch(t, []outcome.PropertyChange{
		{Path: "data.EXTRA", Actual: "added"},
		{Path: "data.GREETING", Expected: "hello", Actual: "edited"},
	}, d.Resources[0].Properties)
	require.NotNil(t, d.Remediated)
	assert.Equal(t, "hello", greeting(t, "slipway-drift"), "remediation restores the desired value")

	after, err := st.CheckDrift(ctx)
	require.NoError(t, err)
	assert.False(t, after.Found(), "%+v", after.Resources)
}

func TestEphemeral_TTLIsCollectedByGC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, state := t.TempDir(), t.TempDir()
	eng, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(t.TempDir()), automation.WithBackend("file://"+state))
	require.NoError(t, err)
	destroyAfter(t, eng, "pr-7", "pr-8")
	_, eph, err := eng.CreateEphemeral(ctx, program(t, env("pr-7", stacks.Ephemeral, "pr")), "7", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "7", eph.Key)
	_, _, err = eng.CreateEphemeral(ctx, program(t, env("pr-8", stacks.Ephemeral, "pr")), "8", time.Hour)
	require.NoError(t, err)
	// Creating again is an update, not an error.
	res, _, err := eng.CreateEphemeral(ctx, program(t, env("pr-7", stacks.Ephemeral, "pr")), "7", time.Second)
	require.NoError(t, err)
	assert.Zero(t, res.Changes())

	list, err := eng.Ephemerals(ctx, web.Project)
	require.NoError(t, err)
	assert.Len(t, list, 2)

	time.Sleep(1100 * time.Millisecond)
	gc, err := eng.GC(ctx, web.Project, time.Now(), 4)
	require.NoError(t, err)
	require.Len(t, gc, 1, "only the expired environment")
	assert.Equal(t, "pr-7", gc[0].Stack)
	assert.Empty(t, gc[0].Error)
	require.Eventually(t, namespaceGone("slipway-pr-7"), 2*time.Minute, 200*time.Millisecond, "nothing left in the API server")
	list, err = eng.Ephemerals(ctx, web.Project)
	require.NoError(t, err)
	require.Len(t, list, 1, "nothing left in the backend")
	assert.Equal(t, "pr-8", list[0].Stack)

	// What is gone is refused by name, never re-created.
	_, err = eng.DestroyEphemeral(ctx, web.Project, "pr-7")
	var unknown *automation.UnknownStackError
	require.ErrorAs(t, err, &unknown)
	assert.Equal(t, []string{"pr-8"}, unknown.Known)
	stacksNow, err := eng.Stacks(ctx, web.Project)
	require.NoError(t, err)
	assert.Equal(t, []string{"pr-8"}, stacksNow, "the refusal created nothing")
	require.NotEmpty(t, filesNaming(t, state, "pr-8"), "a live environment has files in the backend")

	// Nothing of a collected or destroyed ephemeral environment is left in
	// the backend (backups, history, release and run records) or the
	// engine's directory, by GC and by DestroyEphemeral alike.
	_, err = eng.DestroyEphemeral(ctx, web.Project, "pr-8")
	require.NoError(t, err)
	assert.Empty(t, filesNaming(t, state, "pr-7", "pr-8"), "nothing of pr-7 (GC) or pr-8 (DestroyEphemeral) in the backend")
	assert.Empty(t, filesNaming(t, filepath.Join(dir, "workspaces"), "pr-7", "pr-8"), "nor in the engine's directory")
}

// filesNaming lists the files under root whose path has a segment that is
// one of names or starts with it and a dot (pr-7.json.bak).
func filesNaming(t *testing.T, root string, names ...string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, seg := range strings.Split(filepath.ToSlash(rel), "/") {
			for _, n := range names {
				if seg == n || strings.HasPrefix(seg, n+".") {
					out = append(out, rel)
				}
			}
		}
		return nil
	}))
	return out
}

// TestEphemeral_VerbsTouchOnlyEphemeralEnvironments: ephemeral destroy, GC
// and ephemeral create refuse a stack without the ephemeral tag, and leave
// it and its objects untouched.
func TestEphemeral_VerbsTouchOnlyEphemeralEnvironments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "real")
	st, err := eng.UpsertStack(ctx, program(t, env("real", stacks.Prod, "keep")))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)

	_, err = eng.DestroyEphemeral(ctx, web.Project, "real")
	require.True(t, automation.IsNotEphemeral(err), "%v", err)
	assert.Contains(t, err.Error(), automation.TagEphemeral)
	_, _, err = eng.CreateEphemeral(ctx, program(t, env("real", stacks.Ephemeral, "pr")), "1", time.Second)
	require.True(t, automation.IsNotEphemeral(err), "%v", err)
	gc, err := eng.GC(ctx, web.Project, time.Now().Add(1000*time.Hour), 4)
	require.NoError(t, err)
	assert.Empty(t, gc, "GC sees only tagged stacks")

	assert.Equal(t, "keep", greeting(t, "slipway-real"), "untouched")
	tags, err := st.Auto().Workspace().ListTags(ctx, "real")
	require.NoError(t, err)
	assert.NotContains(t, tags, automation.TagEphemeral, "not tagged by the refused create")
}

// TestSelect_UnknownEnvironmentIsRefusedNeverCreated: every operation that
// may not create an environment refuses a typo, listing what exists.
func TestSelect_UnknownEnvironmentIsRefusedNeverCreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "prod")
	_, err := eng.UpsertStack(ctx, program(t, env("prod", stacks.Prod, "x")))
	require.NoError(t, err)

	typo := program(t, env("prdo", stacks.Prod, "x"))
	_, err = eng.SelectStack(ctx, typo)
	var unknown *automation.UnknownStackError
	require.ErrorAs(t, err, &unknown)
	assert.Equal(t, []string{"prod"}, unknown.Known)
	assert.Contains(t, err.Error(), `environment "prdo" does not exist in project slipway (it has: prod)`)
	for _, op := range []automation.Op{automation.Refresh(), automation.Destroy()} {
		res := eng.Each(ctx, []automation.Program{typo}, op, 1)
		require.Len(t, res, 1)
		assert.True(t, automation.IsUnknownStack(res[0].Err), "%s: %v", op.Name, res[0].Err)
	}
	_, _, err = eng.Rollback(ctx, web.Project, "prdo", web.Definition.FromVersion)
	assert.True(t, automation.IsUnknownStack(err), "rollback: %v", err)
	all, err := eng.Stacks(ctx, web.Project)
	require.NoError(t, err)
	assert.Equal(t, []string{"prod"}, all, "nothing was created")
}

func TestRollback_FailedUpAndFailedSmokeRestoreTheLastKnownGood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "rb")
	const ns = "slipway-rb"
	good := env("rb", stacks.Dev, "v1")
	rel, err := web.Definition.Release(good, nil)
	require.NoError(t, err)
	_, err = eng.Deploy(ctx, rel, web.Definition.FromVersion)
	require.NoError(t, err)
	lkg, err := eng.LastKnownGood(ctx, web.Project, "rb")
	require.NoError(t, err)
	require.NotNil(t, lkg)
	assert.FileExists(t, lkg.Checkpoint)

	// A failed up: the API server refuses a ConfigMap over its 1 MiB limit
	// (the Deployment, which reads it, is not reached).
	bad := env("rb", stacks.Dev, "v2")
	bad.Params.App.Settings["BIG"] = strings.Repeat("x", 1<<20)
	bad.Params.App.Replicas = 2
	rel, err = web.Definition.Release(bad, nil)
	require.NoError(t, err)
	d, err := eng.Deploy(ctx, rel, web.Definition.FromVersion)
	require.Error(t, err)
	var re *automation.ReleaseError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, web.Definition.Version(good), re.Restored)
	assert.True(t, d.RolledBack)
	assert.Equal(t, "v1", greeting(t, ns), "the previous ConfigMap value is back")
	dep, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, *dep.Spec.Replicas, "the previous Deployment spec is back")

	// A failed smoke check after a successful up.
	smoky := env("rb", stacks.Dev, "v3")
	rel, err = web.Definition.Release(smoky, func(context.Context, *outcome.Result) error {
		if greeting(t, ns) == "v3" {
			return errors.New("GET / returned 500")
		}
		return nil
	})
	require.NoError(t, err)
	d, err = eng.Deploy(ctx, rel, web.Definition.FromVersion)
	require.ErrorContains(t, err, "smoke check: GET / returned 500")
	assert.True(t, d.RolledBack)
	assert.Equal(t, "v1", greeting(t, ns))

	// An analysis gate that fails after a successful up and smoke check
	// (package analysis gives such gates; here the error rate it measured).
	gated := env("rb", stacks.Dev, "v4")
	rel, err = web.Definition.Release(gated, nil)
	require.NoError(t, err)
	checked := 0
	rel.Gates = []rollout.Gate{rollout.GateFunc{GateName: "error-rate", CheckFunc: func(context.Context) (rollout.Verdict, any, error) {
		checked++
		assert.Equal(t, "v4", greeting(t, ns), "the gate checks the release it follows")
		return rollout.Failed, 0.4, nil
	}}}
	d, err = eng.Deploy(ctx, rel, web.Definition.FromVersion)
	require.ErrorContains(t, err, "analysis error-rate: Failed")
	assert.Equal(t, 1, checked)
	assert.True(t, d.RolledBack)
	assert.Equal(t, "v1", greeting(t, ns), "the failed gate rolled the release back")
	recs, err := eng.Releases(ctx, web.Project, "rb")
	require.NoError(t, err)
	var failed []string
	for _, r := range recs {
		if r.Status == "failed" && r.Version == web.Definition.Version(gated) {
			failed = append(failed, r.Cause)
		}
	}
	require.Len(t, failed, 1, "the gated release is recorded failed")
	assert.Contains(t, failed[0], "analysis error-rate: Failed")
}

func TestPromotion_StopsAtTheFailingGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "p-dev", "p-staging", "p-prod")
	stage := func(name string, kind stacks.Kind, smokeFails bool, approve func(context.Context, string, *outcome.Result) error) automation.Stage {
		e := env(name, kind, "release-42")
		if kind != stacks.Dev {
			e.Params.App.Replicas = 2
		}
		rel, err := web.Definition.Release(e, func(context.Context, *outcome.Result) error {
			if smokeFails {
				return fmt.Errorf("%s: health check failed", name)
			}
			return nil
		})
		require.NoError(t, err)
		return automation.Stage{Name: string(kind), Release: rel, Approve: approve}
	}

	// Staging's smoke check fails: prod is never touched.
	results, err := eng.Promote(ctx, []automation.Stage{
		stage("p-dev", stacks.Dev, false, nil),
		stage("p-staging", stacks.Staging, true, nil),
		stage("p-prod", stacks.Prod, false, nil),
	}, web.Definition.FromVersion)
	var pe *automation.PromotionError
	require.True(t, errors.As(err, &pe), "%v", err)
	assert.Equal(t, "staging", pe.Stage)
	assert.Equal(t, automation.GateDeploy, pe.Gate)
	assert.ErrorContains(t, err, "health check failed")
	require.Len(t, results, 2)
	assert.True(t, namespaceGone("slipway-p-prod")(), "prod was not deployed")
	assert.Equal(t, "release-42", greeting(t, "slipway-p-dev"))

	// Staging passes now; prod's approval is refused.
	var asked []string
	_, err = eng.Promote(ctx, []automation.Stage{
		stage("p-staging", stacks.Staging, false, nil),
		stage("p-prod", stacks.Prod, false, func(_ context.Context, s string, pre *outcome.Result) error {
			asked = append(asked, fmt.Sprintf("%s:%d", s, pre.Changes()))
			return errors.New("change freeze")
		}),
	}, web.Definition.FromVersion)
	require.True(t, errors.As(err, &pe), "%v", err)
	assert.Equal(t, automation.GateApproval, pe.Gate)
	assert.Len(t, asked, 1)
	assert.True(t, namespaceGone("slipway-p-prod")(), "prod was not deployed without approval")
}

func TestParallel_FourEnvironments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	var progs []automation.Program
	for i := 1; i <= 4; i++ {
		progs = append(progs, program(t, env(fmt.Sprintf("par-%d", i), stacks.Dev, "p")))
	}
	for _, r := range eng.Each(ctx, progs, automation.Up(), 4) {
		require.NoError(t, r.Err, r.Stack)
		assert.Positive(t, r.Result.Summary["create"], r.Stack)
		_, err := cluster.Client.CoreV1().Namespaces().Get(ctx, "slipway-"+r.Stack, metav1.GetOptions{})
		assert.NoError(t, err)
	}
	for _, r := range eng.Each(ctx, progs, automation.Destroy(optdestroy.RemoveStack()), 4) {
		require.NoError(t, r.Err, r.Stack)
	}
}

func TestConcurrentUpdates_OneWinsOneGetsALockError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "lock")
	prog := program(t, env("lock", stacks.Dev, "a"))
	run := prog.Run
	prog.Run = func(ctx *pulumi.Context) error { time.Sleep(3 * time.Second); return run(ctx) } // hold the lock a while
	first, err := eng.UpsertStack(ctx, prog)
	require.NoError(t, err)

	started := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	var firstErr error
	go func() {
		defer close(done)
		_, firstErr = first.Up(ctx, optup.OnEvent(func(ev events.EngineEvent) {
			if ev.ResourcePreEvent != nil {
				once.Do(func() { close(started) }) // the first update holds the lock now
			}
		}))
	}()
	select {
	case <-started:
	case <-done:
		t.Fatalf("the first update ended before it started a step: %v", firstErr)
	case <-time.After(2 * time.Minute):
		t.Fatal("the first update never started a step")
	}
	second, err := eng.UpsertStack(ctx, program(t, env("lock", stacks.Dev, "b")))
	require.NoError(t, err)
	_, secondErr := second.Up(ctx)
	<-done
	require.NoError(t, firstErr)
	require.Error(t, secondErr)
	assert.True(t, automation.IsStackLocked(secondErr), "%v", secondErr)

	// The state is intact: the first update's values, and a clean preview of them.
	assert.Equal(t, "a", greeting(t, "slipway-lock"))
	pre, err := first.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err)
	assert.Zero(t, pre.Changes())
}

func TestPlanGate_ReviewedPlanIsAppliedExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "plan")
	st, err := eng.UpsertStack(ctx, program(t, env("plan", stacks.Dev, "one")))
	require.NoError(t, err)
	plan := t.TempDir() + "/plan.json"
	pre, err := st.Preview(ctx, optpreview.Plan(plan))
	require.NoError(t, err)
	assert.FileExists(t, plan)
	v := review.Gate{MaxChanges: 50, NoDeletes: true}.Check(pre)
	require.True(t, v.Pass, "%v", v.Reasons)
	assert.False(t, review.Gate{MaxChanges: 3}.Check(pre).Pass, "too many changes for a tight limit")
	_, err = st.Up(ctx, optup.Plan(plan))
	require.NoError(t, err)
	assert.Equal(t, "one", greeting(t, "slipway-plan"))

	// Review a change, then let the program move on: the saved plan no longer holds.
	pre, err = st.Preview(ctx, optpreview.Plan(plan))
	require.NoError(t, err)
	require.True(t, review.Gate{NoDeletes: true}.Check(pre).Pass)
	moved, err := eng.UpsertStack(ctx, program(t, env("plan", stacks.Dev, "two")))
	require.NoError(t, err)
	_, err = moved.Up(ctx, optup.Plan(plan))
	require.Error(t, err, "an update that differs from the reviewed plan must fail")
	assert.Equal(t, "one", greeting(t, "slipway-plan"), "nothing outside the plan was applied")

	// A preview that would replace or delete is stopped by the gate.
	gone := env("plan", stacks.Dev, "one")
	gone.Params.App.Name = "api" // renames the ConfigMap, Deployment and Service: replacements
	st, err = eng.UpsertStack(ctx, program(t, gone))
	require.NoError(t, err)
	pre, err = st.Preview(ctx)
	require.NoError(t, err)
	const configMap = "kubernetes:core/v1:ConfigMap"
	var cmURN string
	for _, r := range pre.Resources {
		if r.Type == configMap && r.Op == "replace" {
			cmURN = r.URN
		}
	}
	require.NotEmpty(t, cmURN, "the rename replaces the ConfigMap: %+v", pre.Resources)

	v = review.Gate{NoReplaces: true}.Check(pre)
	assert.False(t, v.Pass)
	assert.Contains(t, v.Reasons, "replacement of "+cmURN)

	// Protected types: the replacement of a protected type fails a gate that
	// otherwise allows replacements, naming the protection...
	v = review.Gate{Protected: []string{configMap}}.Check(pre)
	assert.False(t, v.Pass)
	assert.Contains(t, v.Reasons, "replace of protected "+cmURN)
	for _, r := range v.Reasons {
		assert.Contains(t, r, "of protected", "only the protected type fails this gate")
	}
	// ...while protecting a type the preview leaves alone passes.
	v = review.Gate{Protected: []string{"kubernetes:core/v1:Namespace"}}.Check(pre)
	assert.True(t, v.Pass, "%v", v.Reasons)
}

// TestPromotion_ApprovalIsBoundToThePlan: the approval is given for the
// previewed plan; a program that changes after approval fails the deploy
// gate and applies nothing.
func TestPromotion_ApprovalIsBoundToThePlan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "approved")
	current := env("approved", stacks.Dev, "reviewed")
	run := func(ctx *pulumi.Context) error {
		p, err := web.Definition.Program(current)
		if err != nil {
			return err
		}
		return p.Run(ctx)
	}
	approvals := 0
	stage := automation.Stage{Name: "approved",
		Release: automation.Release{Version: web.Definition.Version(current), Program: automation.Program{Project: web.Project, Stack: "approved", Run: run, Plugins: []automation.Plugin{automation.KubernetesPlugin}}},
		Approve: func(_ context.Context, _ string, pre *outcome.Result) error {
			approvals++
			require.NotZero(t, pre.Changes(), "the approver sees the plan")
			current = env("approved", stacks.Dev, "sneaked-in") // the program moves after approval
			return nil
		}}
	_, err := eng.Promote(ctx, []automation.Stage{stage}, web.Definition.FromVersion)
	require.Equal(t, 1, approvals)
	require.True(t, automation.IsPlanChanged(err), "%v", err)
	var pe *automation.PromotionError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, automation.GateDeploy, pe.Gate)
	assert.True(t, namespaceGone("slipway-approved")(), "nothing was applied")
}

// TestHPA_ReplicasAreNeitherDriftNorReverted: the autoscaler's
// replica count (set through the scale subresource, as the HPA controller
// does) is not reported as drift, survives an update of the Deployment and
// a drift remediation.
func TestHPA_ReplicasAreNeitherDriftNorReverted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	eng := newEngine(t)
	e := env("hpa", stacks.Dev, "one")
	st, err := eng.UpsertStack(ctx, program(t, e))
	require.NoError(t, err)
	destroyAfter(t, eng, "hpa")
	_, err = st.Up(ctx)
	require.NoError(t, err)
	deps := cluster.Client.AppsV1().Deployments("slipway-hpa")
	replicas := func() int32 {
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		return *d.Spec.Replicas
	}
	require.EqualValues(t, 1, replicas())

	sc, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	sc.Spec.Replicas = 3
	_, err = deps.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{FieldManager: "kube-controller-manager"})
	require.NoError(t, err)
	require.EqualValues(t, 3, replicas())

	d, err := st.CheckDrift(ctx)
	require.NoError(t, err)
	assert.False(t, d.Found(), "the autoscaler's count is not drift: %+v", d.Resources)

	// An update of the Deployment (new image) keeps the autoscaler's count.
	e.Params.App.Image = "nginx:1.28"
	st, err = eng.UpsertStack(ctx, program(t, e))
	require.NoError(t, err)
	up, err := st.Up(ctx)
	require.NoError(t, err)
	require.NotZero(t, up.Changes(), "the image update was applied")
	assert.EqualValues(t, 3, replicas(), "the update left the autoscaler's count alone")

	// Real drift elsewhere, remediated: the count still stands.
	cm, err := cluster.Client.CoreV1().ConfigMaps("slipway-hpa").Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["GREETING"] = "edited"
	_, err = cluster.Client.CoreV1().ConfigMaps("slipway-hpa").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	d, err = st.CheckDrift(ctx, optdrift.Remediate())
	require.NoError(t, err)
	require.True(t, d.Found())
	require.NotEmpty(t, d.Resources)
	for _, r := range d.Resources {
		assert.Equal(t, "kubernetes:core/v1:ConfigMap", r.Type, "only the ConfigMap drifted: %+v", r)
	}
	assert.Equal(t, "one", greeting(t, "slipway-hpa"))
	assert.EqualValues(t, 3, replicas(), "the remediation left the autoscaler's count alone")
}

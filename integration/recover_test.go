package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/integration/internal/proctree"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// helperUp runs in a child process of the test binary (see TestMain): an up
// of the "killed" environment (or the one SLIPWAY_HELPER_ENV names) whose
// Deployment cannot become ready (60 replicas under a 50-pod quota), so its
// create (or update) stays pending until the process is killed. It prints
// each step as it starts (PRE) and ends (STEP).
func helperUp() {
	ctx := context.Background()
	e, err := automation.New(ctx, automation.WithDir(os.Getenv("SLIPWAY_HELPER_DIR")), automation.WithPulumiHome(os.Getenv("SLIPWAY_HELPER_HOME")))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	name := "killed"
	if n := os.Getenv("SLIPWAY_HELPER_ENV"); n != "" {
		name = n
	}
	prog, err := web.Definition.Program(web.Environment{Name: name, Kind: stacks.Dev, Kubeconfig: os.Getenv("SLIPWAY_HELPER_KUBECONFIG"),
		Params: web.Params{App: web.App{Replicas: 60, ReadyTimeout: 5 * time.Minute}}})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	st, err := e.UpsertStack(ctx, prog)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	_, err = st.Up(ctx, optup.OnEvent(func(ev events.EngineEvent) {
		if ev.ResourcePreEvent != nil {
			md := ev.ResourcePreEvent.Metadata
			fmt.Println("PRE", md.Op, md.Type, md.URN)
		}
		if ev.ResOutputsEvent != nil {
			fmt.Println("STEP", ev.ResOutputsEvent.Metadata.URN)
		}
	}))
	fmt.Println("DONE", err)
	os.Exit(0)
}

// pendingIn reports whether the file backend's checkpoint of a stack
// records a pending operation on urn.
func pendingIn(stateDir, stack, urn string) func() bool {
	return func() bool {
		b, err := os.ReadFile(filepath.Join(stateDir, ".pulumi", "stacks", web.Project, stack+".json"))
		if err != nil {
			return false
		}
		var cp struct {
			Checkpoint struct {
				Latest struct {
					PendingOperations []struct {
						Resource struct {
							URN string `json:"urn"`
						} `json:"resource"`
					} `json:"pending_operations"`
				} `json:"latest"`
			} `json:"checkpoint"`
		}
		if json.Unmarshal(b, &cp) != nil {
			return false
		}
		for _, p := range cp.Checkpoint.Latest.PendingOperations {
			if p.Resource.URN == urn {
				return true
			}
		}
		return false
	}
}

// TestRecover_KilledUpIsRecoveredByTheNextRun kills an update (SIGKILL to
// the whole process tree) while the create of its Deployment is pending,
// then checks what the next run's recovery reports and that the run
// completes with nothing leaked.
func TestRecover_KilledUpIsRecoveredByTheNextRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir, home := t.TempDir(), t.TempDir()
	// The Deployment's create has begun and is pending in the checkpoint (it
	// cannot become ready) when the helper and its engine are killed -9.
	deployment := killUpWhilePending(t, dir, home, "killed", "create")

	// The next run recovers: stale lock removed, pending create cleared, up proceeds.
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home))
	require.NoError(t, err)
	prog, err := web.Definition.Program(web.Environment{Name: "killed", Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig})
	require.NoError(t, err)
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	t.Cleanup(func() { destroyStack(t, e, "killed") })

	rec := st.LastRecovery()
	require.NotNil(t, rec, "opening the stack ran recovery")
	t.Logf("recovery: %+v", *rec)
	require.Len(t, rec.StaleLocks, 1, "the killed engine's lock: %+v", rec)
	assert.Equal(t, "dead", rec.StaleLocks[0].Liveness)
	assert.False(t, rec.StaleLocks[0].Forced)
	assert.Regexp(t, `does not exist|zombie`, rec.StaleLocks[0].Reason)
	assert.Empty(t, rec.HeldLocks)
	var found *recovery.PendingOperation
	for i, p := range rec.PendingOperations {
		assert.True(t, p.Adoptable, "every pending operation is a Kubernetes object: %+v", p)
		if p.URN == deployment {
			found = &rec.PendingOperations[i]
		}
	}
	require.NotNil(t, found, "the Deployment's create is reported: %+v", rec.PendingOperations)
	assert.Equal(t, "creating", found.Op)
	assert.True(t, rec.Refreshed, "the pending creates were cleared by a refresh")
	assert.True(t, rec.Repaired())

	up, err := st.Up(ctx)
	require.NoError(t, err, "the run after the kill must succeed")
	t.Logf("recovered up: %v", up.Summary)
	again := st.LastRecovery()
	require.NotNil(t, again)

	pre, err := st.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err, "state is valid and matches the cluster")
	assert.Zero(t, pre.Changes())
	d, err := cluster.Client.AppsV1().Deployments("slipway-killed").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Status.ReadyReplicas, "the Deployment the killed run created was adopted and updated")

	// Nothing leaked: every object the engine created is in the state, so
	// destroy removes the namespace and everything in it.
	_, err = st.Destroy(ctx)
	require.NoError(t, err)
	require.Eventually(t, namespaceGone("slipway-killed"), 2*time.Minute, 200*time.Millisecond)
}

// destroyStack destroys and removes a stack when a test ends, checking
// that it worked.
func destroyStack(t *testing.T, e *automation.Engine, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	known, err := e.Stacks(ctx, web.Project)
	if !assert.NoError(t, err, "cleanup: listing stacks") || !slices.Contains(known, name) {
		return
	}
	st, err := e.SelectStack(ctx, automation.Program{Project: web.Project, Stack: name, Run: func(*pulumi.Context) error { return nil }, Plugins: []automation.Plugin{automation.KubernetesPlugin}})
	if assert.NoError(t, err, "cleanup: selecting %s", name) {
		_, err = st.Destroy(ctx, optdestroy.RemoveStack())
		assert.NoError(t, err, "cleanup: destroying %s", name)
	}
}

// TestCancel_StopsTheEngineGracefullyAndTheNextRunProceeds cancels the
// context in the middle of an update: the engine is interrupted (SIGINT,
// then killed after a grace period), Up returns the cancellation, and the
// next run recovers and completes.
func TestCancel_StopsTheEngineGracefullyAndTheNextRunProceeds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	t.Cleanup(func() { destroyStack(t, eng, "cancel") })
	upCtx, stop := context.WithCancel(ctx)
	prog := program(t, env("cancel", stacks.Dev, "c"))
	run := prog.Run
	// The program goes on only once the update is being cancelled, so the
	// cancellation lands in the middle of it.
	prog.Run = func(ctx *pulumi.Context) error { <-upCtx.Done(); return run(ctx) }
	st, err := eng.UpsertStack(ctx, prog)
	require.NoError(t, err)

	var once sync.Once
	start := time.Now()
	_, err = st.Up(upCtx, optup.OnEvent(func(ev events.EngineEvent) {
		if ev.ResourcePreEvent != nil {
			once.Do(stop) // the update is under way
		}
	}))
	stop()
	require.ErrorIs(t, err, context.Canceled, "a cancelled update reports the cancellation, not some other failure")
	assert.Less(t, time.Since(start), 2*time.Minute, "cancellation does not hang")

	st, err = eng.UpsertStack(ctx, program(t, env("cancel", stacks.Dev, "c")))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err, "the next run proceeds")
	pre, err := st.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err)
	assert.Zero(t, pre.Changes())
	assert.Equal(t, "c", greeting(t, "slipway-cancel"))
}

// TestOutage_APIServerDownMidUpdateIsRetriedWithoutCorruption restarts the
// API server in the middle of an update: the update (retried on transient
// errors, recovering state in between) completes, and the state matches the
// cluster afterwards.
func TestOutage_APIServerDownMidUpdateIsRetriedWithoutCorruption(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	eng := newEngine(t)
	t.Cleanup(func() { destroyStack(t, eng, "outage") })
	e := env("outage", stacks.Dev, "survived")
	e.Params.App.ReadyTimeout = time.Minute
	st, err := eng.UpsertStack(ctx, program(t, e))
	require.NoError(t, err)

	var once sync.Once
	outage := make(chan error, 1)
	runs := 0
	_, err = st.Up(ctx, optup.Retry(5, 2*time.Second), optup.OnEvent(func(ev events.EngineEvent) {
		if ev.PreludeEvent != nil {
			runs++
		}
		if ev.ResOutputsEvent != nil && ev.ResOutputsEvent.Metadata.Type == "kubernetes:core/v1:Namespace" {
			once.Do(func() { go func() { outage <- cluster.RestartAPIServer(ctx, 3*time.Second) }() })
		}
	}))
	require.NoError(t, <-outage, "the API server came back")
	require.NoError(t, err, "the update completes despite the outage")
	assert.GreaterOrEqual(t, runs, 2, "the outage failed the first engine run and a retry completed the update")
	assert.LessOrEqual(t, runs, 5, "no more runs than Retry allows")

	pre, err := st.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err, "no corruption: state and cluster agree")
	assert.Zero(t, pre.Changes())
	assert.Equal(t, "survived", greeting(t, "slipway-outage"))
}

// plantPending writes a pending operation into the stack's checkpoint, as
// an update killed in the middle of that create leaves it. (Importing a
// deployment cannot do it: pulumi stack import drops pending operations.)
func plantPending(ctx context.Context, t *testing.T, e *automation.Engine, stack, op string) {
	t.Helper()
	store, err := statestore.Open(ctx, e.Backend(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, store.Close()) }()
	cp, err := store.ReadCheckpoint(ctx, web.Project, stack)
	require.NoError(t, err)
	var v map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(cp.Data, &v))
	var c map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(v["checkpoint"], &c))
	var latest map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(c["latest"], &latest))
	latest["pending_operations"] = json.RawMessage("[" + op + "]")
	c["latest"], err = json.Marshal(latest)
	require.NoError(t, err)
	v["checkpoint"], err = json.Marshal(c)
	require.NoError(t, err)
	cp.Data, err = json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, store.WriteCheckpoint(ctx, cp))
}

func pendingCount(ctx context.Context, t *testing.T, st *automation.Stack) int {
	t.Helper()
	dep, err := st.Auto().Export(ctx)
	require.NoError(t, err)
	var d struct {
		Pending []json.RawMessage `json:"pending_operations"`
	}
	require.NoError(t, json.Unmarshal(dep.Deployment, &d))
	return len(d.Pending)
}

// TestRecover_PendingCreatesAreClearedOnlyWhenAdoptable plants an
// interrupted create in a real stack's state: one of a Kubernetes object
// (adopted by the next up, so cleared automatically) and one of a custom
// resource type (it may exist for real: refused until WithRepair).
func TestRecover_PendingCreatesAreClearedOnlyWhenAdoptable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir, home := t.TempDir(), t.TempDir()
	eng, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home))
	require.NoError(t, err)
	prog := program(t, env("pending", stacks.Dev, "p"))
	st, err := eng.UpsertStack(ctx, prog)
	require.NoError(t, err)
	t.Cleanup(func() { destroyStack(t, eng, "pending") })
	_, err = st.Up(ctx)
	require.NoError(t, err)
	require.Zero(t, pendingCount(ctx, t, st))

	const cmURN = "urn:pulumi:pending::" + web.Project + "::kubernetes:core/v1:ConfigMap::planted"
	plantPending(ctx, t, eng, "pending", `{"type":"creating","resource":{"urn":"`+cmURN+`","custom":true,"type":"kubernetes:core/v1:ConfigMap",`+
		`"inputs":{"metadata":{"name":"planted","namespace":"slipway-pending"}}}}`)
	st, err = eng.UpsertStack(ctx, prog)
	require.NoError(t, err, "a pending create of a named Kubernetes object is cleared on its own")
	rec := st.LastRecovery()
	require.NotNil(t, rec)
	require.Len(t, rec.PendingOperations, 1)
	assert.Equal(t, recovery.PendingOperation{Op: "creating", URN: cmURN, Type: "kubernetes:core/v1:ConfigMap", Adoptable: true,
		Reason: "server-side apply adopts the object of the same name"}, rec.PendingOperations[0])
	assert.True(t, rec.Refreshed)
	assert.Equal(t, []string{"urn:pulumi:pending::" + web.Project + "::pulumi:pulumi:Stack::" + web.Project + "-pending"}, rec.RefreshTargets,
		"a create the state does not hold cannot be a target: only the root stack, a component, which reads nothing")
	assert.Subset(t, rec.RefreshTargets, rec.RefreshedResources, "no other resource was stepped through")
	assert.Zero(t, pendingCount(ctx, t, st), "cleared")

	const customURN = "urn:pulumi:pending::" + web.Project + "::slipway:test:Custom::thing"
	plantPending(ctx, t, eng, "pending", `{"type":"creating","resource":{"urn":"`+customURN+`","custom":true,"type":"slipway:test:Custom"}}`)
	_, err = eng.UpsertStack(ctx, prog)
	require.Error(t, err, "a pending create of a custom type is not cleared on its own")
	assert.True(t, automation.IsRepairRequired(err), "%v", err)
	var rr *recovery.RepairRequiredError
	require.ErrorAs(t, err, &rr)
	require.Len(t, rr.Pending, 1)
	assert.Equal(t, customURN, rr.Pending[0].URN)
	assert.False(t, rr.Pending[0].Adoptable)
	assert.Contains(t, err.Error(), "--repair")
	assert.Contains(t, err.Error(), "automation.WithRepair()")
	assert.Equal(t, 1, pendingCount(ctx, t, st), "nothing was cleared")
	_, err = eng.SelectStack(ctx, prog)
	assert.True(t, automation.IsRepairRequired(err), "every open refuses it: %v", err)

	repairing, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home), automation.WithRepair())
	require.NoError(t, err)
	st, err = repairing.UpsertStack(ctx, prog)
	require.NoError(t, err, "WithRepair clears it")
	rec = st.LastRecovery()
	require.NotNil(t, rec)
	require.Len(t, rec.PendingOperations, 1)
	assert.Equal(t, customURN, rec.PendingOperations[0].URN)
	assert.False(t, rec.PendingOperations[0].Adoptable)
	assert.True(t, rec.Refreshed)
	assert.Zero(t, pendingCount(ctx, t, st), "cleared by the repair")
}

// killUpWhilePending runs helperUp for environment env on the engine
// directory dir and kills it (SIGKILL to its whole process tree) once the
// Deployment's step (op: "create" or "update") has begun and its pending
// operation is in the checkpoint. It returns the Deployment's URN.
func killUpWhilePending(t *testing.T, dir, home, env, op string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLIPWAY_HELPER_UP=1", "SLIPWAY_HELPER_DIR="+dir, "SLIPWAY_HELPER_HOME="+home,
		"SLIPWAY_HELPER_KUBECONFIG="+cluster.Kubeconfig, "SLIPWAY_HELPER_ENV="+env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var deployment string
	sc := bufio.NewScanner(out)
	for deployment == "" && sc.Scan() {
		line := sc.Text()
		require.False(t, strings.HasPrefix(line, "ERR") || strings.HasPrefix(line, "DONE"), "the helper ended early: %s", line)
		if f := strings.Fields(line); len(f) == 4 && f[0] == "PRE" && f[1] == op && f[2] == "kubernetes:apps/v1:Deployment" {
			deployment = f[3]
		}
	}
	require.NotEmpty(t, deployment, "the helper never began to %s the Deployment: %v", op, sc.Err())
	require.Eventually(t, pendingIn(filepath.Join(dir, "state"), env, deployment), 2*time.Minute, 50*time.Millisecond,
		"the Deployment's pending operation reaches the checkpoint")
	// Kill -9 the whole tree at once, as a crash would, and wait until every
	// process has ended: the next run must find the lock's owner dead (seen
	// in CI when it did not wait: "alive").
	procs, err := proctree.KillNine(cmd.Process.Pid, time.Minute)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(procs), 2, "the helper and its engine were running")
	_ = cmd.Wait()
	return deployment
}

// TestRecover_RefreshesOnlyThePendingResources kills an update of a
// deployed environment while the update of its Deployment is pending (it
// cannot become ready), then checks that the next run's recovery refreshed
// only the resources of the pending operations, as the engine's events
// report it, not the whole stack, and that the stack is healthy afterwards:
// no pending operation, the next up succeeds, state and cluster agree.
func TestRecover_RefreshesOnlyThePendingResources(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir, home := t.TempDir(), t.TempDir()
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home))
	require.NoError(t, err)
	prog, err := web.Definition.Program(web.Environment{Name: "targeted", Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig})
	require.NoError(t, err)
	t.Cleanup(func() { destroyStack(t, e, "targeted") })
	// A first up whose Deployment cannot become ready (60 replicas under a
	// 50-pod quota) and times out: the Deployment is in the state (with an
	// initialization error), so the next up updates it.
	failing, err := web.Definition.Program(web.Environment{Name: "targeted", Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig,
		Params: web.Params{App: web.App{Replicas: 60, ReadyTimeout: 10 * time.Second}}})
	require.NoError(t, err)
	st, err := e.UpsertStack(ctx, failing)
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.Error(t, err, "the Deployment cannot become ready")
	dep, err := st.Auto().Export(ctx)
	require.NoError(t, err)
	var state struct {
		Resources []struct {
			URN    string `json:"urn"`
			Custom bool   `json:"custom"`
		} `json:"resources"`
	}
	require.NoError(t, json.Unmarshal(dep.Deployment, &state))
	var custom []string
	for _, r := range state.Resources {
		if r.Custom {
			custom = append(custom, r.URN)
		}
	}
	require.Greater(t, len(custom), 5, "the environment has many resources a whole-stack refresh would read")

	// The update that continues waiting for the Deployment is killed.
	deployment := killUpWhilePending(t, dir, home, "targeted", "update")
	require.Contains(t, custom, deployment)
	// The cause goes away (as an operator would fix it): one replica fits.
	_, err = cluster.Client.AppsV1().Deployments("slipway-targeted").Patch(ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	st, err = e.UpsertStack(ctx, prog)
	require.NoError(t, err, "the next run recovers")
	rec := st.LastRecovery()
	require.NotNil(t, rec)
	t.Logf("recovery: %+v", *rec)
	require.Len(t, rec.StaleLocks, 1, "the killed engine's lock")
	var pending []string
	for _, p := range rec.PendingOperations {
		assert.True(t, p.Adoptable, "%+v", p)
		assert.Contains(t, custom, p.URN, "an update of a deployed resource: %+v", p)
		pending = append(pending, p.URN)
	}
	assert.Contains(t, pending, deployment, "the Deployment's interrupted update is reported")
	slices.Sort(pending)
	assert.Equal(t, slices.Compact(pending), rec.RefreshTargets, "the refresh targeted the pending resources, each once")
	assert.True(t, rec.Refreshed)
	assert.Contains(t, rec.RefreshedResources, deployment, "the engine read the Deployment")
	for _, u := range rec.RefreshedResources {
		assert.Contains(t, rec.RefreshTargets, u, "the engine read only targeted resources")
	}
	assert.Less(t, len(rec.RefreshedResources), len(custom), "not the whole stack")
	assert.Zero(t, pendingCount(ctx, t, st), "no pending operation is left")

	_, err = st.Up(ctx)
	require.NoError(t, err, "the run after the recovery succeeds")
	pre, err := st.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err, "state and cluster agree")
	assert.Zero(t, pre.Changes())
	d, err := cluster.Client.AppsV1().Deployments("slipway-targeted").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Status.ReadyReplicas, "the Deployment is back to the program's one replica")
}

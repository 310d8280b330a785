package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/internal/proctree"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

// crashTest is the name of the kill -9 test (TestMain starts the cluster
// when it is selected).
const crashTest = "TestCrash_KillNineAtAnyMomentAt1000Resources"

// The crash helper is this test binary started again by the crash test:
// crashHelperEnv holds the verb it runs ("up" or "destroy"), the others
// what it runs it on.
const (
	crashHelperEnv     = "SLIPWAY_BENCH_CRASH_HELPER"
	crashDirEnv        = "SLIPWAY_BENCH_CRASH_DIR"
	crashHomeEnv       = "SLIPWAY_BENCH_CRASH_HOME"
	crashKubeconfigEnv = "SLIPWAY_BENCH_CRASH_KUBECONFIG"
)

// The crash test's program: its stack, its namespace and its size.
const (
	crashStack = "crash"
	crashNS    = "bench-crash"
	crashN     = 1000
)

// Replaying a failure: the seed the kill points are drawn from, or each
// kill point itself (completed steps, in [1, crashN]).
const (
	crashSeedEnv      = "SLIPWAY_CRASH_SEED"
	crashUpAtEnv      = "SLIPWAY_CRASH_UP_AT"
	crashDestroyAtEnv = "SLIPWAY_CRASH_DESTROY_AT"
)

// crashHelper runs in a child process of the crash test (see TestMain): a
// Slipway up (or destroy) of the crashN-resource program, printing one
// line per completed resource step ("STEP op type urn") and, at the end,
// "DONE error". It returns the exit code.
func crashHelper() int {
	ctx := context.Background()
	verb := os.Getenv(crashHelperEnv)
	// The program reads the kubeconfig from the cluster fixture.
	cluster = &localk8s.Cluster{Kubeconfig: os.Getenv(crashKubeconfigEnv)}
	e, err := automation.New(ctx, automation.WithDir(os.Getenv(crashDirEnv)), automation.WithPulumiHome(os.Getenv(crashHomeEnv)),
		automation.WithPassphrase(passphrase))
	if err != nil {
		fmt.Println("DONE", err)
		return 1
	}
	if p := e.Pulumi(); !p.Patched {
		// The kill must hit the engine Slipway ships (its checkpoint writes).
		fmt.Printf("DONE the crash helper runs pulumi v%s from %s, not the patched build v%s\n", p.Version, p.Source, toolchain.PatchedPulumiVersion)
		return 1
	}
	on := func(ev events.EngineEvent) {
		if o := ev.ResOutputsEvent; o != nil {
			fmt.Println("STEP", o.Metadata.Op, o.Metadata.Type, o.Metadata.URN)
		}
	}
	prog := benchProgram(crashStack, crashNS, crashN, false)
	switch verb {
	case "up":
		var st *automation.Stack
		if st, err = e.UpsertStack(ctx, prog); err == nil {
			_, err = st.Up(ctx, optup.OnEvent(on))
		}
	case "destroy":
		var st *automation.Stack
		if st, err = e.SelectStack(ctx, prog); err == nil {
			_, err = st.Destroy(ctx, optdestroy.OnEvent(on))
		}
	default:
		err = fmt.Errorf("unknown verb %q", verb)
	}
	fmt.Println("DONE", err)
	if err != nil {
		return 1
	}
	return 0
}

// TestCrash_KillNineAtAnyMomentAt1000Resources kills (SIGSTOP, then
// SIGKILL, of the whole process tree) a Slipway up of 1,000 ConfigMaps at a
// random number of completed steps, checks the state the kill left against
// the cluster, then checks that the next run recovers (stale lock removed,
// pending creates adopted), completes the up, and that state and cluster
// agree. It does the same to a destroy of the 1,000, and then checks that
// the finished destroy leaves nothing.
func TestCrash_KillNineAtAnyMomentAt1000Resources(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, crashSeedEnv)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	upAt, destroyAt := killPoint(t, rng, crashUpAtEnv), killPoint(t, rng, crashDestroyAtEnv)
	t.Logf("seed %d: the up is killed after %d completed steps, the destroy after %d (replay with %s=%d, or %s / %s)",
		seed, upAt, destroyAt, crashSeedEnv, seed, crashUpAtEnv, crashDestroyAtEnv)

	dir := t.TempDir()
	prog := benchProgram(crashStack, crashNS, crashN, false)
	t.Cleanup(func() { removeCrashStack(t, dir, prog) })
	phase := phases(t)

	// 1. An up killed at upAt completed steps.
	done := killAt(ctx, t, dir, "up", "create", upAt)
	phase("up killed")
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(pulumiHome), automation.WithPassphrase(passphrase))
	require.NoError(t, err)
	requirePatched(t, e)
	checkKilledState(ctx, t, e, "up", done)
	phase("killed up's state checked")

	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err, "the next run opens the stack the killed up left")
	checkRecovery(t, st.LastRecovery(), "creating")
	phase("recovered (opened)")

	up, err := st.Up(ctx)
	require.NoError(t, err, "the up after the kill completes")
	for op := range up.Summary {
		assert.Contains(t, []string{"create", "same"}, op, "an up of the recovered state only creates the rest: %v", up.Summary)
	}
	assert.Equal(t, resources(crashN), up.Summary["create"]+up.Summary["same"], "every resource of the program: %v", up.Summary)
	phase("up completed")
	d := exportOf(ctx, t, st)
	assert.Empty(t, d.PendingOperations, "no pending operation is left")
	assert.Equal(t, map[string]int{"pulumi:pulumi:Stack": 1, "pulumi:providers:kubernetes": 1, "kubernetes:core/v1:Namespace": 1,
		"kubernetes:core/v1:ConfigMap": crashN, "kubernetes:apps/v1:Deployment": 1}, d.types(), "the state holds the program")
	assert.Equal(t, allConfigMaps(crashN), d.configMaps(), "the state holds every ConfigMap once")
	assert.Equal(t, allConfigMaps(crashN), clusterConfigMaps(ctx, t), "the namespace holds every ConfigMap of the program")
	pre, err := st.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err, "the state matches the program and the cluster")
	assert.Zero(t, pre.Changes())
	phase("up checked (export, cluster, preview)")

	// 2. A destroy killed at destroyAt completed steps.
	done = killAt(ctx, t, dir, "destroy", "delete", destroyAt)
	phase("destroy killed")
	e, err = automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(pulumiHome), automation.WithPassphrase(passphrase))
	require.NoError(t, err)
	checkKilledState(ctx, t, e, "destroy", done)
	phase("killed destroy's state checked")

	st, err = e.SelectStack(ctx, prog)
	require.NoError(t, err, "the next run opens the stack the killed destroy left")
	checkRecovery(t, st.LastRecovery(), "deleting")
	phase("recovered (opened)")
	d = exportOf(ctx, t, st)
	assert.Empty(t, d.PendingOperations, "recovery left no pending operation")
	left := len(d.Resources)
	assert.Equal(t, d.configMaps(), clusterConfigMaps(ctx, t), "after recovery the state holds exactly the ConfigMaps that exist")
	t.Logf("after the recovery the state holds %d resources (%d ConfigMaps)", left, len(d.configMaps()))

	down, err := st.Destroy(ctx)
	require.NoError(t, err, "the destroy after the kill completes")
	assert.Equal(t, map[string]int{"delete": left}, down.Summary, "it deletes what the state held")
	namespaceGone(t, crashNS)
	d = exportOf(ctx, t, st)
	assert.Empty(t, d.Resources, "the stack has no resources")
	assert.Empty(t, d.PendingOperations)
	phase("destroy completed and checked")

	_, err = st.Destroy(ctx, optdestroy.RemoveStack())
	require.NoError(t, err, "removing the stack")
	known, err := e.Stacks(ctx, project)
	require.NoError(t, err)
	assert.NotContains(t, known, crashStack, "the stack is removed")
	t.Logf("total %s", time.Since(start).Round(time.Second))
}

// killPoint returns the number of completed steps after which to kill: the
// value of env when set, else a random one in [50, 950].
func killPoint(t *testing.T, rng *rand.Rand, env string) int {
	t.Helper()
	n := 50 + rng.IntN(901)
	if s := os.Getenv(env); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err, env)
		require.True(t, n >= 1 && n <= crashN, "%s=%d is not in [1, %d]", env, n, crashN)
	}
	return n
}

// phases returns a function that logs how long the phase that just ended
// took.
func phases(t *testing.T) func(name string) {
	last := time.Now()
	return func(name string) {
		t.Logf("phase %-40s %s", name+":", time.Since(last).Round(100*time.Millisecond))
		last = time.Now()
	}
}

// killAt runs the crash helper's verb on the stack in dir, reads its steps
// until at of them with operation op have completed, then stops and kills
// its whole process tree and waits until every process of it has ended. It
// returns the URNs of the steps the helper reported completed.
func killAt(ctx context.Context, t *testing.T, dir, verb, op string, at int) []string {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+verb, crashDirEnv+"="+dir, crashHomeEnv+"="+pulumiHome,
		crashKubeconfigEnv+"="+cluster.Kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Should the test give up (its context ends), the helper's process
	// group goes, which ends the read below.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer func() { require.NoError(t, stderr.Close()) }()
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	defer func() {
		if !killed { // a failed require below: leave no helper behind
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}()
	helperLog := func() string {
		b, _ := os.ReadFile(stderr.Name())
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}

	var done []string
	sc := bufio.NewScanner(out)
	for len(done) < at && sc.Scan() {
		line := sc.Text()
		require.False(t, strings.HasPrefix(line, "DONE"), "the %s helper ended after %d of %d steps: %s\nstderr: %s", verb, len(done), at, line, helperLog())
		if f := strings.Fields(line); len(f) == 4 && f[0] == "STEP" && f[1] == op {
			done = append(done, f[3])
		}
	}
	require.Len(t, done, at, "the %s helper's output ended (%v)\nstderr: %s", verb, sc.Err(), helperLog())

	// Kill -9 the whole tree at once, as a crash would, and wait until every
	// process has ended: the next run must find the lock's owner dead.
	procs, err := proctree.KillNine(cmd.Process.Pid, time.Minute)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(procs), 3, "the helper, its engine and its provider were running")
	killed = true
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the helper was killed")
	ws, _ := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the helper ended by SIGKILL: %v", err)
	t.Logf("killed the %s after %d completed steps: %d processes", verb, len(done), len(procs))
	return done
}

// deployment is the part of a stack's deployment the crash test reads.
type deployment struct {
	Resources []struct {
		URN  string `json:"urn"`
		Type string `json:"type"`
	} `json:"resources"`
	PendingOperations []struct {
		Type     string `json:"type"`
		Resource struct {
			URN string `json:"urn"`
		} `json:"resource"`
	} `json:"pending_operations"`
}

// types counts the resources per type.
func (d deployment) types() map[string]int {
	m := map[string]int{}
	for _, r := range d.Resources {
		m[r.Type]++
	}
	return m
}

// configMaps returns how many resources each ConfigMap name has in the state.
func (d deployment) configMaps() map[string]int {
	m := map[string]int{}
	for _, r := range d.Resources {
		if r.Type == "kubernetes:core/v1:ConfigMap" {
			m[urnName(r.URN)]++
		}
	}
	return m
}

// pending returns the URNs with a pending operation of type op.
func (d deployment) pending(op string) map[string]bool {
	m := map[string]bool{}
	for _, p := range d.PendingOperations {
		if p.Type == op {
			m[p.Resource.URN] = true
		}
	}
	return m
}

// urnName is the name part of a URN.
func urnName(urn string) string { return urn[strings.LastIndex(urn, "::")+2:] }

// allConfigMaps is cm-0 … cm-(n-1), once each.
func allConfigMaps(n int) map[string]int {
	m := make(map[string]int, n)
	for i := range n {
		m[fmt.Sprintf("cm-%d", i)] = 1
	}
	return m
}

// clusterConfigMaps returns the program's ConfigMaps in its namespace, each
// counted once.
func clusterConfigMaps(ctx context.Context, t *testing.T) map[string]int {
	t.Helper()
	l, err := cluster.Client.CoreV1().ConfigMaps(crashNS).List(ctx, metav1.ListOptions{LabelSelector: benchLabel + "=true"})
	require.NoError(t, err)
	m := make(map[string]int, len(l.Items))
	for _, c := range l.Items {
		m[c.Name]++
	}
	return m
}

// exportOf returns the stack's deployment as the engine exports it.
func exportOf(ctx context.Context, t *testing.T, st *automation.Stack) deployment {
	t.Helper()
	dep, err := st.Auto().Export(ctx)
	require.NoError(t, err)
	var d deployment
	require.NoError(t, json.Unmarshal(dep.Deployment, &d))
	return d
}

// checkKilledState checks the state a killed up (or destroy) left, as
// stored, against the cluster, before any recovery: that is where crash
// safety shows. A resource's pending operation must be durable before its
// provider is called, and its completion recorded only after the call:
//
//   - up: every ConfigMap in the cluster is in the state or has a pending
//     create, and every ConfigMap in the state exists; every step the helper
//     saw complete is in the state or pending.
//   - destroy: every ConfigMap in the cluster is still in the state, and
//     every one in the state that is gone has a pending delete; every step
//     the helper saw complete is gone from the state or pending.
//
// When the kill broke the checkpoint's content, the backup recovery would
// restore is checked.
func checkKilledState(ctx context.Context, t *testing.T, e *automation.Engine, verb string, done []string) {
	t.Helper()
	store, err := statestore.Open(ctx, e.Backend(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, store.Close()) }()
	cp, err := store.ReadCheckpoint(ctx, project, crashStack)
	require.NoError(t, err)
	if _, err := cp.JSON(); err != nil {
		t.Logf("the kill broke the checkpoint (%v): checking its backup", err)
		cp, err = store.ReadBackup(ctx, cp)
		require.NoError(t, err)
	} else if cp.Metadata != nil {
		t.Logf("the kill broke the checkpoint's metadata only: %v", cp.Metadata)
	}
	dep, err := cp.Deployment()
	require.NoError(t, err, "the checkpoint the kill left loads")
	var d deployment
	require.NoError(t, json.Unmarshal(dep.Deployment, &d))

	inState := map[string]bool{}
	for _, r := range d.Resources {
		inState[r.URN] = true
	}
	stateCMs, live := d.configMaps(), clusterConfigMaps(ctx, t)
	byName := map[string]string{} // ConfigMap name → its URN in the state or a pending operation
	for _, r := range d.Resources {
		if r.Type == "kubernetes:core/v1:ConfigMap" {
			byName[urnName(r.URN)] = r.URN
		}
	}
	for _, p := range d.PendingOperations {
		if strings.Contains(p.Resource.URN, "::kubernetes:core/v1:ConfigMap::") {
			byName[urnName(p.Resource.URN)] = p.Resource.URN
		}
	}
	ops := map[string]int{}
	for _, p := range d.PendingOperations {
		ops[p.Type]++
	}
	t.Logf("the killed %s left %d resources (%d ConfigMaps) and pending operations %v; the cluster holds %d ConfigMaps; the helper saw %d steps complete",
		verb, len(d.Resources), len(stateCMs), ops, len(live), len(done))
	for name, n := range stateCMs {
		assert.Equal(t, 1, n, "ConfigMap %s is in the state once", name)
	}

	switch verb {
	case "up":
		creating := d.pending("creating")
		assert.Equal(t, len(d.PendingOperations), len(creating), "an up of a new stack only creates: %v", ops)
		for name := range live {
			assert.True(t, stateCMs[name] > 0 || creating[byName[name]], "ConfigMap %s exists but the state has neither it nor its pending create", name)
		}
		for name := range stateCMs {
			assert.Contains(t, live, name, "ConfigMap %s is in the state but does not exist", name)
		}
		for _, urn := range done {
			assert.True(t, inState[urn] || creating[urn], "%s completed but the state has neither it nor its pending create", urn)
		}
	case "destroy":
		deleting := d.pending("deleting")
		assert.Equal(t, len(d.PendingOperations), len(deleting), "a destroy only deletes: %v", ops)
		for name := range live {
			assert.Contains(t, stateCMs, name, "ConfigMap %s exists but the state lost it", name)
		}
		for name := range stateCMs {
			if _, ok := live[name]; !ok {
				assert.True(t, deleting[byName[name]], "ConfigMap %s is in the state, is gone, and has no pending delete", name)
			}
		}
		for _, urn := range done {
			assert.True(t, !inState[urn] || deleting[urn], "%s was deleted but the state holds it without a pending delete", urn)
		}
	}
	require.False(t, t.Failed(), "the state the kill left is not crash-safe")
}

// checkRecovery checks what opening the killed stack recovered: the killed
// engine's lock (its owner dead) was removed, and the pending operations,
// each an op of a Kubernetes object, were adoptable and cleared by a refresh.
func checkRecovery(t *testing.T, rec *recovery.Recovery, op string) {
	t.Helper()
	require.NotNil(t, rec, "opening the stack ran recovery")
	b, _ := json.Marshal(rec)
	t.Logf("recovery: %s", b)
	require.Len(t, rec.StaleLocks, 1, "the killed engine's lock: %+v", rec)
	assert.Equal(t, "dead", rec.StaleLocks[0].Liveness)
	assert.False(t, rec.StaleLocks[0].Forced)
	assert.Regexp(t, `does not exist|zombie`, rec.StaleLocks[0].Reason)
	assert.Empty(t, rec.HeldLocks)
	require.NotEmpty(t, rec.PendingOperations, "the kill interrupted steps in flight")
	for _, p := range rec.PendingOperations {
		assert.Equal(t, op, p.Op, "%+v", p)
		assert.True(t, p.Adoptable, "every pending operation is of a Kubernetes object: %+v", p)
	}
	assert.True(t, rec.Refreshed, "the pending operations were reconciled by a refresh")
	assert.True(t, rec.Repaired())
}

// removeCrashStack destroys and removes the crash test's stack when the
// test ends, if it is still there (the test removes it when it passes),
// checking that it worked.
func removeCrashStack(t *testing.T, dir string, prog automation.Program) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(pulumiHome), automation.WithPassphrase(passphrase))
	if !assert.NoError(t, err, "cleanup") {
		return
	}
	known, err := e.Stacks(ctx, project)
	if !assert.NoError(t, err, "cleanup: listing stacks") || !slices.Contains(known, crashStack) {
		return
	}
	st, err := e.SelectStack(ctx, prog)
	if assert.NoError(t, err, "cleanup: selecting the stack") {
		_, err = st.Destroy(ctx, optdestroy.RemoveStack())
		assert.NoError(t, err, "cleanup: destroying the stack")
	}
	_, err = cluster.Client.CoreV1().Namespaces().Get(ctx, crashNS, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "cleanup: namespace %s is gone (%v)", crashNS, err)
}

package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/stacks"
)

// helperUp runs in a child process of the test binary (see TestMain): an up
// of the "killed" environment that prints each finished step.
func helperUp() {
	ctx := context.Background()
	e, err := automation.New(ctx, automation.WithDir(os.Getenv("SLIPWAY_HELPER_DIR")), automation.WithPulumiHome(os.Getenv("SLIPWAY_HELPER_HOME")))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	prog, err := stacks.Environment{Name: "killed", Kubeconfig: os.Getenv("SLIPWAY_HELPER_KUBECONFIG")}.Program()
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	st, err := e.UpsertStack(ctx, prog)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	_, err = st.Up(ctx, automation.OnEvent(func(ev events.EngineEvent) {
		if ev.ResOutputsEvent != nil {
			fmt.Println("STEP", ev.ResOutputsEvent.Metadata.URN)
		}
	}))
	fmt.Println("DONE", err)
	os.Exit(0)
}

// descendants returns the PIDs of every process below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

func TestRecover_KilledUpIsRecoveredByTheNextRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, home := t.TempDir(), t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLIPWAY_HELPER_UP=1", "SLIPWAY_HELPER_DIR="+dir, "SLIPWAY_HELPER_HOME="+home,
		"SLIPWAY_HELPER_KUBECONFIG="+cluster.Kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	// Kill the whole tree (test helper, pulumi CLI, provider) with SIGKILL as
	// soon as the update has created a few resources.
	steps := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		require.False(t, strings.HasPrefix(line, "ERR") || strings.HasPrefix(line, "DONE"), "the helper ended early: %s", line)
		if strings.HasPrefix(line, "STEP") {
			steps++
			if steps == 4 {
				break
			}
		}
	}
	// Stop the tree first (so nothing spawns more), then kill everything in it.
	procs := append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...)
	for _, p := range procs {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	procs = append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...)
	for _, p := range procs {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = cmd.Wait()
	t.Logf("killed %d processes after %d steps", len(procs), steps)

	// The next run recovers: stale lock removed, pending operations reconciled, up proceeds.
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home))
	require.NoError(t, err)
	prog, err := stacks.Environment{Name: "killed", Kubeconfig: cluster.Kubeconfig}.Program()
	require.NoError(t, err)
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = st.Destroy(context.Background(), automation.RemoveStack()) })
	up, err := st.Up(ctx)
	require.NoError(t, err, "the run after the kill must succeed")
	t.Logf("recovered up: %v", up.Summary)

	pre, err := st.Preview(ctx, automation.ExpectNoChanges())
	require.NoError(t, err, "state is valid and matches the cluster")
	assert.Zero(t, pre.Changes())
	d, err := cluster.Client.AppsV1().Deployments("slipway-killed").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Status.ReadyReplicas)

	// Nothing leaked: every object the engine created is in the state, so
	// destroy removes the namespace and everything in it.
	_, err = st.Destroy(ctx)
	require.NoError(t, err)
	require.Eventually(t, namespaceGone("slipway-killed"), 2*time.Minute, 200*time.Millisecond)
}

// TestCancel_StopsTheEngineGracefullyAndTheNextRunProceeds cancels the
// context in the middle of an update: the engine is interrupted (SIGINT,
// then killed after a grace period), Up returns the cancellation, and the
// next run recovers and completes.
func TestCancel_StopsTheEngineGracefullyAndTheNextRunProceeds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := newEngine(t)
	destroyAfter(t, eng, "cancel")
	prog := program(t, env("cancel", stacks.Dev, "c"))
	run := prog.Run
	prog.Run = func(ctx *pulumi.Context) error { time.Sleep(3 * time.Second); return run(ctx) }
	st, err := eng.UpsertStack(ctx, prog)
	require.NoError(t, err)

	upCtx, stop := context.WithCancel(ctx)
	var once sync.Once
	start := time.Now()
	_, err = st.Up(upCtx, automation.OnEvent(func(ev events.EngineEvent) {
		if ev.ResourcePreEvent != nil {
			once.Do(stop) // the update is under way
		}
	}))
	stop()
	require.Error(t, err, "a cancelled update reports it")
	assert.Less(t, time.Since(start), 2*time.Minute, "cancellation does not hang")

	st, err = eng.UpsertStack(ctx, program(t, env("cancel", stacks.Dev, "c")))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err, "the next run proceeds")
	pre, err := st.Preview(ctx, automation.ExpectNoChanges())
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
	destroyAfter(t, eng, "outage")
	e := env("outage", stacks.Dev, "survived")
	e.App.ReadyTimeout = time.Minute
	st, err := eng.UpsertStack(ctx, program(t, e))
	require.NoError(t, err)

	var once sync.Once
	outage := make(chan error, 1)
	runs := 0
	_, err = st.Up(ctx, automation.Retry(5, 2*time.Second), automation.OnEvent(func(ev events.EngineEvent) {
		if ev.PreludeEvent != nil {
			runs++
		}
		if ev.ResOutputsEvent != nil && ev.ResOutputsEvent.Metadata.Type == "kubernetes:core/v1:Namespace" {
			once.Do(func() { go func() { outage <- cluster.RestartAPIServer(ctx, 3*time.Second) }() })
		}
	}))
	require.NoError(t, <-outage, "the API server came back")
	require.NoError(t, err, "the update completes despite the outage")
	t.Logf("engine runs: %d", runs)

	pre, err := st.Preview(ctx, automation.ExpectNoChanges())
	require.NoError(t, err, "no corruption: state and cluster agree")
	assert.Zero(t, pre.Changes())
	assert.Equal(t, "survived", greeting(t, "slipway-outage"))
}

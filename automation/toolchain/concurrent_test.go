package toolchain

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEnsureAll_BuildsConcurrentlyWithProgressForEach: two tools are in go
// build at the same time (neither is released before both started), each
// reports its own progress lines, and both succeed.
func TestEnsureAll_BuildsConcurrentlyWithProgressForEach(t *testing.T) {
	withModules(t, "hello", "hola")
	g := newGate(t, "hello", "hola")
	var log watchLog
	r := New(WithCacheDir(t.TempDir()), WithLog(&log), WithGo(g.goBin))
	r.progressEvery = 5 * time.Millisecond
	type result struct {
		dirs []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		dirs, err := r.ensureAll(testCtx(t), fakeTool("hello", time.Minute), fakeTool("hola", time.Minute))
		done <- result{dirs, err}
	}()

	started := []string{g.waitStarted(t), g.waitStarted(t)}
	assert.ElementsMatch(t, []string{"hello", "hola"}, started, "both builds run at once")
	for _, name := range started {
		log.waitFor(t, `^slipway: `+name+`: \d+s elapsed; compiled 0 of 4 packages`)
		g.release(t, name)
	}
	res := <-done
	require.NoError(t, res.err)
	require.Len(t, res.dirs, 2)
	assert.Equal(t, "hello", filepath.Base(filepath.Dir(res.dirs[0])), "directories in the order of the tools")
	assert.Equal(t, "hola", filepath.Base(filepath.Dir(res.dirs[1])))
	for i, name := range []string{"hello", "hola"} {
		ok, reason := verify(res.dirs[i], fakeTool(name, 0))
		assert.True(t, ok, reason)
		assert.Regexp(t, `(?m)^slipway: built `+name+` v1 in \d+s$`, log.String())
	}
}

// TestEnsureAll_LongestFirstWithinMaxBuilds: with one build slot, the tool
// expected to take longest builds first and the other waits for the slot,
// saying so.
func TestEnsureAll_LongestFirstWithinMaxBuilds(t *testing.T) {
	withModules(t, "hello", "hola")
	g := newGate(t, "hello", "hola")
	var log watchLog
	r := New(WithCacheDir(t.TempDir()), WithLog(&log), WithGo(g.goBin), WithMaxBuilds(1))
	done := make(chan error, 1)
	go func() {
		_, err := r.ensureAll(testCtx(t), fakeTool("hello", time.Second), fakeTool("hola", time.Hour))
		done <- err
	}()
	assert.Equal(t, "hola", g.waitStarted(t), "the longest expected build starts first")
	log.waitFor(t, `^slipway: hello: waiting for one of 1 build slots$`)
	g.release(t, "hola")
	assert.Equal(t, "hello", g.waitStarted(t))
	g.release(t, "hello")
	require.NoError(t, <-done)
}

// TestEnsureAll_AFailureNamesItsToolAndStopsTheOthers: one tool fails to
// compile while the other is held in go build; the error names the failed
// tool and the held build is cancelled (ensureAll returns without it ever
// being released) and left unfinished.
func TestEnsureAll_AFailureNamesItsToolAndStopsTheOthers(t *testing.T) {
	withModules(t, "hello", "broken")
	g := newGate(t, "hello") // never released
	r := New(WithCacheDir(t.TempDir()), WithLog(&watchLog{}), WithGo(g.goBin))
	ctx := testCtx(t)
	_, err := r.ensureAll(ctx, fakeTool("hello", time.Hour), fakeTool("broken", time.Second))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "toolchain: building broken v1: go build")
	assert.Contains(t, err.Error(), "undefinedThing")
	assert.NotContains(t, err.Error(), "hello")
	require.NoError(t, ctx.Err(), "ensureAll waited for the held build instead of cancelling it")
	dir, err := r.toolDir(fakeTool("hello", 0))
	require.NoError(t, err)
	ok, _ := verify(dir, fakeTool("hello", 0))
	assert.False(t, ok)
}

// TestEnsureAll_CancellationStopsEveryBuild: cancelling the caller's context
// ends all running builds.
func TestEnsureAll_CancellationStopsEveryBuild(t *testing.T) {
	withModules(t, "hello", "hola")
	g := newGate(t, "hello", "hola") // never released
	r := New(WithCacheDir(t.TempDir()), WithLog(&watchLog{}), WithGo(g.goBin))
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := r.ensureAll(ctx, fakeTool("hello", time.Minute), fakeTool("hola", time.Minute))
		done <- err
	}()
	g.waitStarted(t)
	g.waitStarted(t)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(failsafe):
		t.Fatal("the builds did not stop")
	}
}

// TestControlPlaneAndAll_BuildTheirToolsConcurrently drives the public
// methods with the real tools swapped for tiny ones: ControlPlane builds
// Kubernetes and kwok at once; All then builds the two missing tools at once
// (not the warm ones again) and installs the provider.
func TestControlPlaneAndAll_BuildTheirToolsConcurrently(t *testing.T) {
	names := []string{"pulumi", "pulumi-resource-kubernetes", "kubernetes", "kwok"}
	withModules(t, names...)
	swapTool(t, &pulumiTool, fakeTool("pulumi", 6*time.Minute))
	swapTool(t, &kubernetesProviderTool, fakeTool("pulumi-resource-kubernetes", 12*time.Minute))
	swapTool(t, &kubernetesTool, fakeTool("kubernetes", 9*time.Minute))
	swapTool(t, &kwokTool, fakeTool("kwok", 2*time.Minute))
	g := newGate(t, names...)
	var log watchLog
	r := New(WithCacheDir(t.TempDir()), WithLog(&log), WithGo(g.goBin), WithoutPATH())

	// ControlPlane: both at once.
	type cpResult struct {
		cp  *ControlPlane
		err error
	}
	cpDone := make(chan cpResult, 1)
	go func() { cp, err := r.ControlPlane(testCtx(t)); cpDone <- cpResult{cp, err} }()
	started := []string{g.waitStarted(t), g.waitStarted(t)}
	assert.ElementsMatch(t, []string{"kubernetes", "kwok"}, started, "both at once")
	g.release(t, "kubernetes")
	g.release(t, "kwok")
	res := <-cpDone
	require.NoError(t, res.err)
	assert.Equal(t, "kubernetes", filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(res.cp.Etcd)))))
	assert.Equal(t, "kwok", filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(res.cp.Kwok)))))

	// All: the control plane is warm; the provider and pulumi build at once.
	home := t.TempDir()
	allDone := make(chan error, 1)
	go func() { allDone <- r.All(testCtx(t), home) }()
	started = []string{g.waitStarted(t), g.waitStarted(t)}
	assert.ElementsMatch(t, []string{"pulumi-resource-kubernetes", "pulumi"}, started)
	g.release(t, "pulumi-resource-kubernetes")
	g.release(t, "pulumi")
	require.NoError(t, <-allDone)
	_, err := os.Stat(PluginPath(home, "resource", "kubernetes", KubernetesProviderVersion))
	assert.NoError(t, err, "All installs the provider")
	assert.Equal(t, 1, len(log.lines("slipway: building kubernetes v1")), "a warm tool is not built again")
}

// TestAll_AFailureNamesTheTool: an error from any of All's builds names it.
func TestAll_AFailureNamesTheTool(t *testing.T) {
	withModules(t, "pulumi", "pulumi-resource-kubernetes", "kubernetes", "broken")
	swapTool(t, &pulumiTool, fakeTool("pulumi", time.Minute))
	swapTool(t, &kubernetesProviderTool, fakeTool("pulumi-resource-kubernetes", time.Minute))
	swapTool(t, &kubernetesTool, fakeTool("kubernetes", time.Minute))
	swapTool(t, &kwokTool, fakeTool("broken", time.Hour))
	err := New(WithCacheDir(t.TempDir()), WithLog(&watchLog{}), WithoutPATH()).All(testCtx(t), t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "building broken v1")
}

// TestKubectl_IsItsOwnToolBuiltOnlyWhenAskedFor: the control plane does not
// build kubectl; Kubectl builds it as its own tool (here it cannot: no go),
// unless a control plane built when it still included kubectl provides one.
func TestKubectl_IsItsOwnToolBuiltOnlyWhenAskedFor(t *testing.T) {
	assert.NotContains(t, kubernetesTool.outputs, "kubectl")
	assert.False(t, slices.ContainsFunc(kubernetesTool.packages, func(p string) bool { return filepath.Base(p) == "kubectl" }))
	assert.Equal(t, []string{"k8s.io/kubernetes/cmd/kubectl"}, kubectlTool.packages)
	for _, tl := range []tool{pulumiTool, kubernetesProviderTool, kwokTool} {
		assert.NotContains(t, tl.outputs, "kubectl")
	}

	r := New(WithCacheDir(t.TempDir()), WithLog(&watchLog{}), WithGo(filepath.Join(t.TempDir(), "no-go")))
	_, err := r.Kubectl(context.Background())
	require.ErrorIs(t, err, ErrNoGo)
	assert.Contains(t, err.Error(), "building kubectl v"+KubernetesVersion)
	st := r.Status()
	require.Equal(t, "kubectl", st[len(st)-1].Tool)
	assert.False(t, st[len(st)-1].Ready)

	// An older control plane build with kubectl in its manifest.
	k8s, err := r.toolDir(kubernetesTool)
	require.NoError(t, err)
	bin := filepath.Join(k8s, "bin", "kubectl")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	mf, err := describe(bin)
	require.NoError(t, err)
	writeManifest(t, k8s, map[string]manifestFile{"kubectl": mf})
	got, err := r.Kubectl(context.Background())
	require.NoError(t, err)
	assert.Equal(t, bin, got)
	st = r.Status()
	assert.True(t, st[len(st)-1].Ready)
	assert.Equal(t, k8s, st[len(st)-1].Dir)
}

func writeManifest(t *testing.T, dir string, files map[string]manifestFile) {
	t.Helper()
	b, err := json.Marshal(manifest{Tool: "kubernetes", Version: "v" + KubernetesVersion, Files: files})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644))
}

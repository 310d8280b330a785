package toolchain

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helloTool is a tiny module built through the same path as the real tools.
var helloTool = tool{
	name: "hello", version: "v1", module: "hello",
	packages: []string{"."}, outputs: []string{"hello"}, ldflags: "-s -w -X main.greeting=hi",
	estimate: 5 * time.Second,
}

func withHelloModule(t *testing.T) {
	t.Helper()
	old := modules
	modules = fstest.MapFS{
		"modules/hello/go.mod.txt":  {Data: []byte("module example.com/hello\n\ngo 1.26.0\n")},
		"modules/hello/main.go.txt": {Data: []byte("package main\n\nimport \"fmt\"\n\nvar greeting = \"unset\"\n\nfunc main() { fmt.Println(greeting) }\n")},
	}
	t.Cleanup(func() { modules = old })
}

// safeBuffer is a bytes.Buffer safe for concurrent writes.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runHello(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(dir, "bin", "hello")).Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func TestEnsure_BuildsOnceThenResolvesFromCache(t *testing.T) {
	withHelloModule(t)
	var log safeBuffer
	r := New(WithCacheDir(t.TempDir()), WithLog(&log))
	dir, err := r.ensure(context.Background(), helloTool)
	require.NoError(t, err)
	assert.Equal(t, "hi", runHello(t, dir), "ldflags must be applied")
	assert.Equal(t, 1, strings.Count(log.String(), "slipway: building hello"))

	dir2, err := r.ensure(context.Background(), helloTool)
	require.NoError(t, err)
	assert.Equal(t, dir, dir2)
	assert.Equal(t, 1, strings.Count(log.String(), "slipway: building hello"), "a warm resolve must not build")
}

func TestEnsure_TruncatedBinaryIsRebuilt(t *testing.T) {
	withHelloModule(t)
	var log safeBuffer
	r := New(WithCacheDir(t.TempDir()), WithLog(&log))
	dir, err := r.ensure(context.Background(), helloTool)
	require.NoError(t, err)
	bin := filepath.Join(dir, "bin", "hello")
	require.NoError(t, os.Truncate(bin, 100))

	ok, reason := verify(dir, helloTool)
	assert.False(t, ok)
	assert.Contains(t, reason, "truncated")

	_, err = r.ensure(context.Background(), helloTool)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "rebuilding hello v1: bin/hello is 100 bytes")
	assert.Equal(t, "hi", runHello(t, dir))
}

func TestEnsure_InterruptedBuildIsRebuilt(t *testing.T) {
	withHelloModule(t)
	var log safeBuffer
	r := New(WithCacheDir(t.TempDir()), WithLog(&log))
	dir, err := r.ensure(context.Background(), helloTool)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, "manifest.json"))) // as if killed before the manifest was written

	_, err = r.ensure(context.Background(), helloTool)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "a previous build did not finish")
	assert.Equal(t, "hi", runHello(t, dir))
}

func TestEnsure_ConcurrentResolversBuildOnce(t *testing.T) {
	withHelloModule(t)
	var log safeBuffer
	cache := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = New(WithCacheDir(cache), WithLog(&log)).ensure(context.Background(), helloTool)
		}()
	}
	wg.Wait()
	for i := range dirs {
		require.NoError(t, errs[i])
		assert.Equal(t, dirs[0], dirs[i])
	}
	assert.Equal(t, 1, strings.Count(log.String(), "slipway: building hello"), log.String())
}

func TestEnsure_NoGoToolchainIsAClearError(t *testing.T) {
	withHelloModule(t)
	t.Setenv("PATH", t.TempDir())
	t.Setenv("SLIPWAY_GO", "")
	r := New(WithCacheDir(t.TempDir()), WithLog(&bytes.Buffer{}), WithGo(filepath.Join(t.TempDir(), "no-go")))
	_, err := r.ensure(context.Background(), helloTool)
	require.ErrorIs(t, err, ErrNoGo)
	assert.Contains(t, err.Error(), "WithGo")
}

func TestEnsure_BuildFailureShowsCompilerOutput(t *testing.T) {
	old := modules
	modules = fstest.MapFS{
		"modules/hello/go.mod.txt":  {Data: []byte("module example.com/hello\n\ngo 1.26.0\n")},
		"modules/hello/main.go.txt": {Data: []byte("package main\n\nfunc main() { undefinedThing() }\n")},
	}
	t.Cleanup(func() { modules = old })
	r := New(WithCacheDir(t.TempDir()), WithLog(&bytes.Buffer{}))
	dir, err := r.ensure(context.Background(), helloTool)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefinedThing")
	ok, _ := verify(dir, helloTool)
	assert.False(t, ok, "a failed build must not look finished")
}

func TestToolDir_ChangesWithModuleContent(t *testing.T) {
	withHelloModule(t)
	r := New(WithCacheDir(t.TempDir()))
	a, err := r.toolDir(helloTool)
	require.NoError(t, err)
	modules.(fstest.MapFS)["modules/hello/extra.go.txt"] = &fstest.MapFile{Data: []byte("package main\n")}
	b, err := r.toolDir(helloTool)
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
}

// fakePulumi writes root/bin/pulumi, a stand-in for a pulumi CLI of a
// version Slipway does not build, that prints version.
func fakePulumi(t *testing.T, root, version string) string {
	t.Helper()
	bin := filepath.Join(root, "bin", "pulumi")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho "+version+"\n"), 0o755))
	return bin
}

func TestPulumiCLI_ExplicitBinaryIsVersionChecked(t *testing.T) {
	root := t.TempDir()
	bin := fakePulumi(t, root, "v3.100.0")
	_, err := New(WithPulumi(bin)).PulumiCLI(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "version 3.100.0, Slipway needs "+MinPulumiVersion+" or newer")
	assert.Contains(t, err.Error(), "WithPulumi(")

	fakePulumi(t, root, "v4.0.0")
	_, err = New(WithPulumi(bin)).PulumiCLI(context.Background())
	assert.ErrorContains(t, err, "Slipway needs "+MinPulumiVersion+" or newer (3.x)", "another major is refused")

	fakePulumi(t, root, "v"+PulumiVersion)
	got, err := New(WithPulumi(bin), WithLog(io.Discard)).PulumiCLI(context.Background())
	require.NoError(t, err)
	assert.Equal(t, root, got)
}

// TestPulumi_PathFromTheMinimumVersionOnWithANotice: a pulumi on PATH of
// MinPulumiVersion or newer is used (no 17-minute build) with a notice that
// it lacks the group-commit patch, PulumiVersion itself included; Slipway's
// own stamp is recognised as patched, silently; an older one is passed over
// with a notice naming the minimum.
func TestPulumi_PathFromTheMinimumVersionOnWithANotice(t *testing.T) {
	for _, c := range []struct {
		version string
		patched bool
	}{{"v" + MinPulumiVersion, false}, {"v3.200.0", false}, {"v" + PulumiVersion, false}, {"v" + PatchedPulumiVersion, true}} {
		t.Run(c.version, func(t *testing.T) {
			root := t.TempDir()
			fakePulumi(t, root, c.version)
			t.Setenv("PATH", filepath.Join(root, "bin"))
			var log safeBuffer
			p, err := New(WithCacheDir(t.TempDir()), WithLog(&log)).Pulumi(context.Background())
			require.NoError(t, err)
			assert.Equal(t, root, p.Root)
			assert.Equal(t, "PATH", p.Source)
			assert.Equal(t, strings.TrimPrefix(c.version, "v"), p.Version)
			assert.Equal(t, c.patched, p.Patched)
			if c.patched {
				assert.Empty(t, log.String())
			} else {
				assert.Contains(t, log.String(), "notice: using pulumi "+c.version+" from PATH")
				assert.Contains(t, log.String(), "lacks Slipway's group-commit patch")
			}
		})
	}
	root := t.TempDir()
	fakePulumi(t, root, "v3.104.9")
	t.Setenv("PATH", filepath.Join(root, "bin"))
	var log safeBuffer
	_, ok, err := New(WithCacheDir(t.TempDir()), WithLog(&log)).pulumiOutsideCache(context.Background())
	require.NoError(t, err)
	assert.False(t, ok, "a pulumi older than the minimum is not used")
	assert.Contains(t, log.String(), "not using the pulumi CLI on PATH")
	assert.Contains(t, log.String(), "version 3.104.9, Slipway needs "+MinPulumiVersion)
}

// TestPulumiTool_PatchedBuildIsStampedApart: Slipway's build and the
// upstream build print different versions, so their cache directories
// differ and a changed stamp makes a new directory (a relink).
func TestPulumiTool_PatchedBuildIsStampedApart(t *testing.T) {
	assert.Contains(t, pulumiTool.ldflags, "version.Version=v"+PatchedPulumiVersion)
	assert.NotContains(t, pulumiUpstreamTool.ldflags, "+slipway")
	assert.Contains(t, pulumiUpstreamTool.ldflags, "version.Version=v"+PulumiVersion)
	r := New(WithCacheDir(t.TempDir()))
	a, err := r.toolDir(pulumiTool)
	require.NoError(t, err)
	restamped := pulumiTool
	restamped.ldflags = pulumiVersionFlag + PulumiVersion + "+other"
	b, err := r.toolDir(restamped)
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "a new stamp is a new cache entry, built (relinked) once")
}

// TestFindPulumi_NeverBuilds: without a pulumi on PATH and with an empty
// cache, FindPulumi says how to get one and builds nothing.
func TestFindPulumi_NeverBuilds(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	cache := t.TempDir()
	var log safeBuffer
	_, err := New(WithCacheDir(cache), WithLog(&log)).FindPulumi(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "slipway toolchain build")
	assert.Contains(t, err.Error(), "pulumi "+MinPulumiVersion+" or newer on PATH")
	assert.NotContains(t, log.String(), "building")
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was built")
}

// TestPulumi_CachedBuildPrintsThePatchedStamp: the pulumi CLI Slipway
// builds (or finds in the cache) prints PatchedPulumiVersion.
func TestPulumi_CachedBuildPrintsThePatchedStamp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	r := New(WithoutPATH(), WithLog(os.Stderr))
	p, err := r.Pulumi(ctx)
	require.NoError(t, err)
	assert.True(t, p.Patched)
	assert.Equal(t, "cache", p.Source)
	out, err := exec.Command(p.Bin(), "version").Output()
	require.NoError(t, err)
	assert.Equal(t, "v"+PatchedPulumiVersion, strings.TrimSpace(string(out)))
	found, err := r.FindPulumi(ctx)
	require.NoError(t, err)
	assert.Equal(t, p, found)
}

func TestInstallPlugin_IsIdempotentAndReplacesForeignBinary(t *testing.T) {
	src := filepath.Join(t.TempDir(), "provider")
	require.NoError(t, os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755))
	plugins := t.TempDir()
	stale := filepath.Join(plugins, "resource-kubernetes-v4.32.0")
	require.NoError(t, os.MkdirAll(stale, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stale, "pulumi-resource-kubernetes"), []byte("broken"), 0o755))
	require.NoError(t, os.WriteFile(stale+".partial", nil, 0o644))

	exe, err := installPlugin(src, plugins, "resource", "kubernetes", "4.32.0")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(stale, "pulumi-resource-kubernetes"), exe)
	a, _ := os.Stat(src)
	b, _ := os.Stat(exe)
	assert.True(t, os.SameFile(a, b) || a.Size() == b.Size())
	assert.NoFileExists(t, stale+".partial")

	_, err = installPlugin(src, plugins, "resource", "kubernetes", "4.32.0")
	require.NoError(t, err)
	entries, _ := os.ReadDir(plugins)
	assert.Len(t, entries, 1, "no temporary directories may be left behind")
}

// TestVersions_MatchGoMod keeps the built tools in step with the SDKs in go.mod.
func TestVersions_MatchGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	gomod := string(b)
	assert.Contains(t, gomod, "github.com/pulumi/pulumi/sdk/v3 v"+PulumiVersion+"\n")
	assert.Contains(t, gomod, "github.com/pulumi/pulumi-kubernetes/sdk/v4 v"+KubernetesProviderVersion+"\n")
	assert.Contains(t, gomod, "github.com/pulumi/pulumi-aws/sdk/v6 v"+AWSProviderVersion+"\n")
}

// BenchmarkResolveWarm measures a warm resolution (stat + manifest read).
func BenchmarkResolveWarm(b *testing.B) {
	old := modules
	modules = fstest.MapFS{
		"modules/hello/go.mod.txt":  {Data: []byte("module example.com/hello\n\ngo 1.26.0\n")},
		"modules/hello/main.go.txt": {Data: []byte("package main\n\nvar greeting = \"x\"\n\nfunc main() { println(greeting) }\n")},
	}
	defer func() { modules = old }()
	r := New(WithCacheDir(b.TempDir()), WithLog(&bytes.Buffer{}))
	if _, err := r.ensure(context.Background(), helloTool); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.ensure(context.Background(), helloTool); err != nil {
			b.Fatal(err)
		}
	}
}

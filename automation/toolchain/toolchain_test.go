package toolchain

import (
	"bytes"
	"context"
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

func TestPulumiCLI_ExplicitBinaryIsVersionChecked(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "pulumi")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho v3.100.0\n"), 0o755))
	_, err := New(WithPulumi(bin)).PulumiCLI(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "version 3.100.0, Slipway needs "+PulumiVersion)

	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho v"+PulumiVersion+"\n"), 0o755))
	got, err := New(WithPulumi(bin)).PulumiCLI(context.Background())
	require.NoError(t, err)
	assert.Equal(t, root, got)
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

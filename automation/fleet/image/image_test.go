package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

const tinyMain = "github.com/slipwayhq/slipway/automation/fleet/image/testdata/tiny"

// fakeBundle is a small toolchain bundle at the directories the real
// resolver computes for the platform, so a binary built with Slipway finds
// it; its "binaries" are tiny files (the real ones are hundreds of MB: the
// integration test carries them).
func fakeBundle(t *testing.T) func(ctx context.Context, goos, goarch string, created time.Time) ([]toolchain.BundleFile, error) {
	return func(_ context.Context, goos, goarch string, _ time.Time) ([]toolchain.BundleFile, error) {
		dirs, err := toolchain.New(toolchain.WithCacheDir(ToolchainDir), toolchain.WithPlatform(goos, goarch)).CacheEntries()
		require.NoError(t, err)
		var files []toolchain.BundleFile
		for tool, d := range dirs {
			files = append(files,
				toolchain.BundleFile{Path: d + "/bin/" + tool, Data: []byte("#!" + tool + " " + goarch), Mode: 0o755},
				toolchain.BundleFile{Path: d + "/manifest.json", Data: []byte("{}"), Mode: 0o644})
		}
		return files, nil
	}
}

// layerFiles reads every layer of img into path -> header.
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
	return out
}

func TestBuild_ReproducibleIndexWithConfig(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	t.Parallel()
	ctx := context.Background()
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	opts := Options{Main: tinyMain, ModuleDir: root, Platforms: []string{"linux/amd64", "linux/arm64"},
		Source: "https://example.test/team/platform", Revision: "abc123", Version: "v1.2.3", bundle: fakeBundle(t)}
	build := func(o Options) *Result {
		r, err := Build(ctx, o)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		return r
	}
	a, b := build(opts), build(opts)
	da, err := a.Digest()
	require.NoError(t, err)
	db, err := b.Digest()
	require.NoError(t, err)
	assert.Equal(t, da, db, "the same inputs must give the same digest")
	later := opts
	later.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dl, err := build(later).Digest()
	require.NoError(t, err)
	assert.NotEqual(t, da, dl, "another time is another image")

	require.NotNil(t, a.Index, "two platforms make an index")
	im, err := a.Index.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	for i, want := range []string{"amd64", "arm64"} {
		desc := im.Manifests[i]
		require.NotNil(t, desc.Platform)
		assert.Equal(t, "linux", desc.Platform.OS)
		assert.Equal(t, want, desc.Platform.Architecture)
		img, err := a.Index.Image(desc.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, want, cf.Architecture)
		assert.Equal(t, "65532:65532", cf.Config.User)
		assert.Equal(t, []string{BinaryPath}, cf.Config.Entrypoint)
		assert.Contains(t, cf.Config.Env, "SLIPWAY_CACHE_DIR="+ToolchainDir)
		assert.Contains(t, cf.Config.Env, "HOME="+Home)
		assert.Equal(t, map[string]string{LabelSource: opts.Source, LabelRevision: "abc123", LabelVersion: "v1.2.3"}, cf.Config.Labels)
		assert.Equal(t, time.Unix(0, 0).UTC(), cf.Created.Time.UTC())

		files := layerFiles(t, img)
		for p, h := range files {
			assert.True(t, h.ModTime.Equal(time.Unix(0, 0)), "%s has time %s", p, h.ModTime)
		}
		bin := files[strings.TrimPrefix(BinaryPath, "/")]
		require.NotNil(t, bin, "the binary is in the image")
		assert.EqualValues(t, 0o755, bin.Mode&0o7777)
		assert.EqualValues(t, UID, files["home/nonroot"].Uid)
		assert.EqualValues(t, 0o700, files["home/nonroot"].Mode&0o7777)
		assert.EqualValues(t, 0o1777, files["tmp"].Mode&0o7777, "/tmp is world-writable and sticky")
		assert.NotNil(t, files["etc/ssl/certs/ca-certificates.crt"])
		dirs, err := toolchain.New(toolchain.WithCacheDir(ToolchainDir), toolchain.WithPlatform("linux", want)).CacheEntries()
		require.NoError(t, err)
		for tool, d := range dirs {
			assert.NotNil(t, files[path.Join(strings.TrimPrefix(ToolchainDir, "/"), d, "bin", tool)], "%s of %s", tool, want)
		}
		// The tiny binary is static (CGO_ENABLED=0): no C library.
		for p := range files {
			assert.NotContains(t, p, "libc.so", "a static binary needs no C library")
		}
	}
}

// TestBuild_PluginsAreInTheImageAndNamedInItsEnv: each plugin is copied to
// PluginPath, executable, in a layer of its own, and the configuration's
// $SLIPWAY_PLUGINS names it at that path.
func TestBuild_PluginsAreInTheImageAndNamedInItsEnv(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	platform := "linux/" + runtime.GOARCH
	if runtime.GOOS != "linux" || !slices.Contains(Platforms, platform) {
		t.Skip("uses this test binary as a plugin of the host's platform")
	}
	t.Parallel()
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	// Any executable ELF file of the platform stands in for a plugin.
	self, err := os.Executable()
	require.NoError(t, err)
	r, err := Build(context.Background(), Options{Main: tinyMain, ModuleDir: root, Platforms: []string{platform}, bundle: fakeBundle(t),
		Plugins: []Plugin{{Name: "aws", Version: "6.83.0", Path: self}, {Name: "random", Version: "4.16.0", Path: self}}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	require.NotNil(t, r.Image)
	cf, err := r.Image.ConfigFile()
	require.NoError(t, err)
	assert.Contains(t, cf.Config.Env, "SLIPWAY_PLUGINS=aws@6.83.0=/opt/slipway/plugins/aws-v6.83.0/pulumi-resource-aws,"+
		"random@4.16.0=/opt/slipway/plugins/random-v4.16.0/pulumi-resource-random")
	files := layerFiles(t, r.Image)
	for _, p := range []string{PluginPath("aws", "6.83.0"), PluginPath("random", "4.16.0")} {
		h := files[strings.TrimPrefix(p, "/")]
		require.NotNil(t, h, "%s is in the image", p)
		assert.EqualValues(t, 0o755, h.Mode&0o7777, p)
		fi, err := os.Stat(self)
		require.NoError(t, err)
		assert.Equal(t, fi.Size(), h.Size, "%s is the plugin's binary", p)
	}
	layers, err := r.Image.Layers()
	require.NoError(t, err)
	assert.Len(t, layers, 4, "base, toolchain, plugins, binary")
}

// TestBuild_RefusesBadPlugins: a plugin that is not a Linux binary of the
// platform, one given twice, or plugins with two platforms are refused
// before anything is built, naming --plugin and the fix.
func TestBuild_RefusesBadPlugins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "pulumi-resource-aws")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	self, err := os.Executable()
	require.NoError(t, err)
	host := "linux/" + runtime.GOARCH
	aws := Plugin{Name: "aws", Version: "6.83.0", Path: self}
	for _, c := range []struct {
		name string
		o    Options
		want []string
	}{
		{"two platforms", Options{Main: "./x", Platforms: Platforms, Plugins: []Plugin{aws}},
			[]string{"--plugin aws@6.83.0=", "is a binary of one platform", "2 platforms", "one image per platform"}},
		{"not an ELF binary", Options{Main: "./x", Platforms: []string{host}, Plugins: []Plugin{{Name: "aws", Version: "6.83.0", Path: script}}},
			[]string{"plugin aws", "--plugin aws@6.83.0=" + script, "not an ELF"}},
		{"missing", Options{Main: "./x", Platforms: []string{host}, Plugins: []Plugin{{Name: "aws", Version: "6.83.0", Path: filepath.Join(dir, "nope")}}},
			[]string{"plugin aws", "does not exist"}},
		{"no version", Options{Main: "./x", Platforms: []string{host}, Plugins: []Plugin{{Name: "aws", Path: self}}},
			[]string{"NAME@VERSION=PATH"}},
		{"twice", Options{Main: "./x", Platforms: []string{host}, Plugins: []Plugin{aws, aws}},
			[]string{"aws@6.83.0 is given twice"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Go = filepath.Join(dir, "no-go")
			c.o.CacheDir = filepath.Join(dir, "cache")
			r, err := Build(context.Background(), c.o)
			require.Error(t, err)
			assert.Nil(t, r)
			var ie *InputError
			assert.True(t, errors.As(err, &ie), "an *InputError: %v", err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			_, statErr := os.Stat(c.o.CacheDir)
			assert.True(t, errors.Is(statErr, fs.ErrNotExist), "nothing was built")
		})
	}
}

func TestBuild_TarEntriesSorted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := writeLayer(filepath.Join(dir, "l"), []entry{
		{path: "z/file", mode: 0o644, data: []byte("z")},
		{path: "a/b/file", mode: 0o644, data: []byte("a")},
		{path: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}, time.Unix(0, 0))
	require.NoError(t, err)
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		assert.Equal(t, 0, h.Uid)
		assert.Empty(t, h.Uname, "numeric owners only")
	}
	assert.Equal(t, []string{"a/", "a/b/", "a/b/file", "tmp/", "z/", "z/file"}, names, "parents are added and every entry is sorted")
}

func TestSharedLibraries_HostCLibraryForDynamicBinaries(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("reads the host's x86-64 C library")
	}
	bin := "/bin/true"
	interp, needed, err := dynamic(bin)
	if err != nil || interp == "" {
		t.Skipf("%s is not a dynamically linked binary here", bin)
	}
	require.Contains(t, needed, "libc.so.6")
	libs, err := sharedLibraries([]string{bin}, Platform{OS: "linux", Arch: "amd64"})
	require.NoError(t, err)
	var paths []string
	for _, l := range libs {
		paths = append(paths, "/"+l.path)
		fi, err := os.Stat(l.src)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "%s is copied from the file, not the link", l.src)
	}
	assert.Contains(t, paths, interp, "the dynamic loader is in the image at the path the binary names")
	hasLibc := false
	for _, p := range paths {
		hasLibc = hasLibc || path.Base(p) == "libc.so.6"
	}
	assert.True(t, hasLibc, "the C library is in the image: %v", paths)

	_, err = sharedLibraries([]string{bin}, Platform{OS: "linux", Arch: "arm64"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dynamically linked")
	assert.Contains(t, err.Error(), "CGO_ENABLED=0")
}

func TestBuild_RefusesBadInputNamingTheFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(notExec, []byte("x"), 0o644))
	self, err := os.Executable()
	require.NoError(t, err)
	other := map[string]string{"amd64": "linux/arm64", "arm64": "linux/amd64"}[runtime.GOARCH]
	for _, c := range []struct {
		name string
		o    Options
		want []string
	}{
		{"unknown platform", Options{Main: "./x", Platforms: []string{"windows/amd64"}}, []string{`platform "windows/amd64" is not supported`, "--platform", "linux/amd64, linux/arm64"}},
		{"platform twice", Options{Main: "./x", Platforms: []string{"linux/amd64", "linux/amd64"}}, []string{"given twice", "--platform"}},
		{"no binary at all", Options{}, []string{"no binary for linux/amd64", "--main", "--binary linux/amd64="}},
		{"missing binary", Options{Binaries: map[string]string{"linux/amd64": filepath.Join(dir, "nope")}}, []string{"--binary linux/amd64=", "does not exist"}},
		{"binary not executable", Options{Binaries: map[string]string{"linux/amd64": notExec}}, []string{"--binary linux/amd64=", "not an executable file"}},
		{"binary of another architecture", Options{Platforms: []string{other}, Binaries: map[string]string{other: self}}, []string{"--binary " + other, "GOARCH="}},
		{"binary for a platform not built", Options{Main: "./x", Binaries: map[string]string{other: self}}, []string{"not among the platforms", "--platform " + other}},
		{"binary for an unknown platform", Options{Binaries: map[string]string{"linux/s390x": self}}, []string{`"linux/s390x" is not supported`, "--binary linux/s390x="}},
		{"no CA bundle", Options{Main: "./x", CACertificates: filepath.Join(dir, "none.crt")}, []string{"--ca-certificates", "not a non-empty file"}},
		{"module dir missing", Options{Main: "./x", ModuleDir: filepath.Join(dir, "none")}, []string{"--module-dir", "not a directory"}},
		{"created before 1970", Options{Main: "./x", Created: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"--created", "before 1970"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A go command that cannot run proves nothing was built.
			c.o.Go = filepath.Join(dir, "no-go")
			c.o.CacheDir = filepath.Join(dir, "cache")
			r, err := Build(context.Background(), c.o)
			require.Error(t, err)
			assert.Nil(t, r)
			var ie *InputError
			assert.True(t, errors.As(err, &ie), "an *InputError: %v", err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			_, statErr := os.Stat(c.o.CacheDir)
			assert.True(t, errors.Is(statErr, fs.ErrNotExist), "nothing was built")
		})
	}
}

func TestBuild_RefusesABinaryNotBuiltWithSlipway(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("uses the host's /bin/true as a non-Go linux/amd64 binary")
	}
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true")
	}
	r, err := Build(context.Background(), Options{Binaries: map[string]string{"linux/amd64": "/bin/true"}, bundle: fakeBundle(t)})
	require.Error(t, err)
	assert.Nil(t, r)
	assert.Contains(t, err.Error(), "no Go build information")
}

package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

func TestImageBuild_BadInputNamesTheFlagBeforeAnythingIsBuilt(t *testing.T) {
	t.Parallel()
	opts := []Option{Definitions(web.Definition)}
	dir := t.TempDir()
	layout := []string{"--oci-layout", filepath.Join(dir, "layout")}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no output", []string{"image", "build", "--main", "./cmd/x"}, "--oci-layout DIR, --tarball FILE or --push"},
		{"unknown platform", append([]string{"image", "build", "--main", "./cmd/x", "--platform", "windows/amd64"}, layout...), "--platform"},
		{"binary not PLATFORM=PATH", append([]string{"image", "build", "--binary", "./bin/x"}, layout...), `--binary "./bin/x" is not PLATFORM=PATH`},
		{"binary missing", append([]string{"image", "build", "--binary", "linux/amd64=" + filepath.Join(dir, "nope")}, layout...), "--binary linux/amd64="},
		{"tarball of an index", []string{"image", "build", "--main", "./cmd/x", "--platform", "linux/amd64,linux/arm64", "--tarball", filepath.Join(dir, "i.tar")}, "--tarball holds one platform"},
		{"created not a time", append([]string{"image", "build", "--main", "./cmd/x", "--created", "yesterday"}, layout...), "--created"},
		{"no binary", append([]string{"image", "build"}, layout...), "no binary for linux/amd64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, opts, append(c.args, "--json", "--cache-dir", filepath.Join(dir, "cache"))...)
			assert.Equal(t, 1, r.code, r.stderr)
			env := validEnvelope(t, r)
			e, ok := env["error"].(map[string]any)
			require.True(t, ok, "an error: %s", r.stdout)
			assert.Equal(t, "invalid_input", e["code"])
			assert.Contains(t, e["message"], c.want)
			assert.NoDirExists(t, filepath.Join(dir, "layout"), "nothing was written")
			assert.NoDirExists(t, filepath.Join(dir, "cache"), "nothing was built")
		})
	}
}

// TestImageBuild_ThePluginsTheProgramsListAreGiven: a plugin that a
// definition lists and Slipway does not build is refused before anything
// is built, naming it and --plugin; given with --plugin, it passes the
// check (the build then stops at the next input, a missing --binary).
func TestImageBuild_ThePluginsTheProgramsListAreGiven(t *testing.T) {
	t.Parallel()
	random := automation.Plugin{Name: "random", Version: "4.16.0"}
	withRandom := &stacks.Definition[tinyParams]{Name: "rnd", Project: "rnd", Defaults: tiny.Defaults, Run: tiny.Run,
		Plugins: func(stacks.Env[tinyParams]) []automation.Plugin {
			return []automation.Plugin{automation.KubernetesPlugin, random}
		}}
	opts := []Option{Definitions(web.Definition, withRandom)}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "pulumi-resource-random")
	require.NoError(t, os.WriteFile(plugin, []byte("#!/bin/sh\n"), 0o755))
	missing := filepath.Join(dir, "nope")
	args := []string{"image", "build", "--binary", "linux/amd64=" + missing, "--oci-layout", filepath.Join(dir, "layout"),
		"--json", "--cache-dir", filepath.Join(dir, "cache")}
	for _, c := range []struct {
		name    string
		plugins []string
		want    string
		notWant string
	}{
		{"listed, not given", nil, "definition rnd lists the plugin random v4.16.0", ""},
		{"another version given", []string{"--plugin", "random@4.15.0=" + plugin}, "--plugin random@4.16.0=PATH", ""},
		{"given", []string{"--plugin", "random@4.16.0=" + plugin}, "--binary linux/amd64=" + missing, "random"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, opts, append(c.plugins, args...)...)
			assert.Equal(t, 1, r.code, r.stderr)
			env := validEnvelope(t, r)
			e, ok := env["error"].(map[string]any)
			require.True(t, ok, "an error: %s", r.stdout)
			assert.Equal(t, "invalid_input", e["code"])
			assert.Contains(t, e["message"], c.want)
			if c.notWant != "" {
				assert.NotContains(t, e["message"], c.notWant, "the plugin check passed")
			}
			assert.NoDirExists(t, filepath.Join(dir, "layout"), "nothing was written")
			assert.NoDirExists(t, filepath.Join(dir, "cache"), "nothing was built")
		})
	}
}

// TestParams_ListsEachDefinitionsPlugins: params --json names the plugins
// each definition's programs list, as image build checks them.
func TestParams_ListsEachDefinitionsPlugins(t *testing.T) {
	t.Parallel()
	r := run(t, []Option{Definitions(web.Definition)}, "params", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	env := validEnvelope(t, r)
	results := env["results"].([]any)
	require.Len(t, results, 1)
	defs := results[0].(map[string]any)["params"].(map[string]any)["definitions"].([]any)
	require.Len(t, defs, 1)
	assert.Equal(t, []any{map[string]any{"name": "kubernetes", "version": automation.KubernetesPlugin.Version}}, defs[0].(map[string]any)["plugins"])
}

// TestOperatorInstall_NoDefaultImage: --print and --kustomize without
// --image are refused as bad input naming --image and image build, before
// anything is printed or written.
func TestOperatorInstall_NoDefaultImage(t *testing.T) {
	t.Parallel()
	opts := []Option{Definitions(web.Definition)}
	dir := filepath.Join(t.TempDir(), "kustomize")
	for _, args := range [][]string{
		{"operator", "install", "--print", "--cluster-wide"},
		{"operator", "install", "--print", "--watch-namespaces", "team-a"},
		{"operator", "install", "--kustomize", dir, "--cluster-wide"},
	} {
		r := run(t, opts, args...)
		assert.Equal(t, ExitError, r.code, "%v: %s", args, r.stderr)
		assert.Empty(t, r.stdout, "%v prints nothing", args)
		assert.Contains(t, r.stderr, "--image is required")
		assert.Contains(t, r.stderr, "image build")
		assert.NoDirExists(t, dir, "%v writes nothing", args)
		jr := run(t, opts, append(args, "--json")...)
		e, ok := validEnvelope(t, jr)["error"].(map[string]any)
		require.True(t, ok, "an error: %s", jr.stdout)
		assert.Equal(t, "invalid_input", e["code"])
		assert.Contains(t, e["message"], "--image")
	}
	r := run(t, opts, "operator", "install", "--print", "--cluster-wide", "--image", "registry.example/team/slipway@sha256:"+
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "image: registry.example/team/slipway@sha256:", "with --image it prints the Deployments")
}

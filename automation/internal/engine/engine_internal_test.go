package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKubernetesPlugin_IsResolvedOncePerEngine: the first program that
// needs the Kubernetes provider installs it into the engine's PULUMI_HOME;
// later ones do not resolve it again.
func TestKubernetesPlugin_IsResolvedOncePerEngine(t *testing.T) {
	warm := filepath.Join(toolchain.DefaultCacheDir(), "pulumi-resource-kubernetes")
	// Build it when the cache is cold (a no-op when warm).
	_, err := toolchain.New().KubernetesProvider(context.Background(), t.TempDir())
	require.NoError(t, err)
	cache := t.TempDir()
	require.NoError(t, os.Symlink(warm, filepath.Join(cache, "pulumi-resource-kubernetes")))
	home := t.TempDir()
	e := &Engine{pulumiHome: home, resolver: toolchain.New(toolchain.WithCacheDir(cache), toolchain.WithoutPATH(),
		toolchain.WithLog(io.Discard), toolchain.WithGo(filepath.Join(t.TempDir(), "no-go")))}
	require.NoError(t, e.Kubernetes(context.Background()))
	path := toolchain.PluginPath(home, "resource", KubernetesPlugin.Name, KubernetesPlugin.Version)
	_, err = os.Stat(path)
	require.NoError(t, err, "installed where the engine looks")

	// Resolved once: a second program does not resolve (or reinstall) it.
	require.NoError(t, os.RemoveAll(filepath.Join(home, "plugins")))
	require.NoError(t, e.Kubernetes(context.Background()))
	_, err = os.Stat(path)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the provider was resolved again")
}

// TestValidate_MissingPluginFailsBeforeTheEngineRuns: a program that needs a
// plugin Slipway does not build is refused with the way to provide it, and
// the engine is never started (this Engine has no pulumi command at all).
func TestValidate_MissingPluginFailsBeforeTheEngineRuns(t *testing.T) {
	home := t.TempDir()
	e := &Engine{dir: t.TempDir(), pulumiHome: home}
	prog := Program{Project: "p", Stack: "dev", Run: func(*pulumi.Context) error { return nil }, Plugins: []Plugin{{Name: "aws", Version: toolchain.AWSProviderVersion}}}
	{
		err := e.Validate(context.Background(), prog)
		var mp *MissingPluginError
		require.ErrorAs(t, err, &mp)
		assert.Equal(t, "aws", mp.Plugin.Name)
		assert.Contains(t, err.Error(), "does not download by default")
		assert.Contains(t, err.Error(), filepath.Join(home, "plugins", "resource-aws-v"+toolchain.AWSProviderVersion, "pulumi-resource-aws"))
		assert.Contains(t, err.Error(), "automation.WithPlugin")
	}
	_, err := os.Stat(filepath.Join(e.dir, "workspaces"))
	assert.True(t, os.IsNotExist(err), "validation makes no workspace")

	// Installed, it passes the check.
	bin := filepath.Join(t.TempDir(), "pulumi-resource-aws")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	_, err = toolchain.InstallPlugin(bin, home, "resource", "aws", toolchain.AWSProviderVersion)
	require.NoError(t, err)
	assert.NoError(t, e.checkPlugins(prog))
}

// TestWorkspace_NeverDownloadsPlugins: every engine run has automatic plugin
// acquisition turned off.
func TestWorkspace_NeverDownloadsPlugins(t *testing.T) {
	e := &Engine{backend: "file:///tmp/x", env: map[string]string{}}
	opts := e.WorkspaceOptions(t.TempDir())
	require.NotEmpty(t, opts)
	b, err := json.Marshal(e.Env())
	require.NoError(t, err)
	assert.Contains(t, string(b), `"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION":"true"`)
}

// TestPolicyDir_RefusesABinaryThatNeverCalledServeIfAnalyzer: this test
// binary never calls ServeIfAnalyzer, so using it as the analyzer fails
// before any engine run, naming the missing call.
func TestPolicyDir_RefusesABinaryThatNeverCalledServeIfAnalyzer(t *testing.T) {
	require.False(t, policypacks.AnalyzerReady())
	self, err := os.Executable()
	require.NoError(t, err)
	e := &Engine{dir: t.TempDir(), analyzer: self}
	_, err = e.PolicyDir("dev", policypacks.Settings{Kind: "dev"}, &policypacks.Pack{Name: "p", Version: "0.1.0"})
	require.ErrorIs(t, err, ErrAnalyzerNotServed)
	assert.Contains(t, err.Error(), "ServeIfAnalyzer()")
	_, err = os.Stat(filepath.Join(e.dir, "policy", "dev"))
	assert.True(t, os.IsNotExist(err), "no pack directory was written")

	// A program carrying a pack directory linked to this binary is refused too.
	dir := t.TempDir()
	require.NoError(t, os.Symlink(self, policypacks.Entry(dir)))
	err = e.Validate(context.Background(), Program{Project: "p", Stack: "dev", Run: func(*pulumi.Context) error { return nil }, Policies: []string{dir}})
	require.ErrorIs(t, err, ErrAnalyzerNotServed)
	err = e.Validate(context.Background(), Program{Project: "p", Stack: "dev", Run: func(*pulumi.Context) error { return nil }, Policies: []string{t.TempDir()}})
	assert.ErrorContains(t, err, "is not a policy pack directory")
}

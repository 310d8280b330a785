package automation

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/policypacks"
)

func noop(*pulumi.Context) error { return nil }

// TestOpen_MissingPluginFailsBeforeTheEngineRuns: a program that needs a
// plugin Slipway does not build is refused with the way to provide it, and
// the engine is never started (this Engine has no pulumi command at all).
func TestOpen_MissingPluginFailsBeforeTheEngineRuns(t *testing.T) {
	home := t.TempDir()
	e := &Engine{dir: t.TempDir(), pulumiHome: home}
	prog := Program{Project: "p", Stack: "dev", Run: noop, Plugins: []Plugin{{Name: "aws", Version: toolchain.AWSProviderVersion}}}
	for _, open := range []func(context.Context, Program) (*Stack, error){e.UpsertStack, e.SelectStack} {
		_, err := open(context.Background(), prog)
		var mp *MissingPluginError
		require.ErrorAs(t, err, &mp)
		assert.Equal(t, "aws", mp.Plugin.Name)
		assert.Contains(t, err.Error(), "does not download by default")
		assert.Contains(t, err.Error(), filepath.Join(home, "plugins", "resource-aws-v"+toolchain.AWSProviderVersion, "pulumi-resource-aws"))
		assert.Contains(t, err.Error(), "automation.WithPlugin")
	}
	_, err := os.Stat(filepath.Join(e.dir, "workspaces"))
	assert.True(t, os.IsNotExist(err), "no workspace was made")

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
	_, err = e.UpsertStack(context.Background(), Program{Project: "p", Stack: "dev", Run: noop, Policies: []string{dir}})
	require.ErrorIs(t, err, ErrAnalyzerNotServed)
	_, err = e.UpsertStack(context.Background(), Program{Project: "p", Stack: "dev", Run: noop, Policies: []string{t.TempDir()}})
	assert.ErrorContains(t, err, "is not a policy pack directory")
}

func TestValidateBackend_NamesTheProblem(t *testing.T) {
	for url, want := range map[string]string{
		"ftp://x":                  "is not supported",
		"file://relative/dir":      "needs an absolute directory",
		"file://":                  "needs an absolute directory",
		"s3://":                    "names no bucket",
		"gs://":                    "names no bucket",
		"https://":                 "names no host",
		"s3://b?access_key=SECRET": "",
		"::bad":                    "does not parse",
	} {
		err := ValidateBackend(url)
		if want == "" {
			assert.NoError(t, err, url)
			continue
		}
		require.Error(t, err, url)
		assert.Contains(t, err.Error(), want, url)
		assert.NotContains(t, err.Error(), "SECRET")
	}
	for _, ok := range []string{"file:///var/state", "file://~/state", "s3://bucket?region=eu-west-1", "https://api.pulumi.com", "azblob://c"} {
		assert.NoError(t, ValidateBackend(ok), ok)
	}
}

func TestChangesFoundError_IsTypedAndDistinctFromFailures(t *testing.T) {
	err := error(&OpError{Op: "preview", Stack: "dev", Err: &ChangesFoundError{Op: "preview", Stack: "dev", Changes: 3}})
	assert.True(t, IsChangesFound(err))
	assert.False(t, IsChangesFound(errors.New("preview failed")))
	assert.False(t, IsChangesFound(&PolicyBlockedError{Op: "up"}))
	assert.Contains(t, err.Error(), "found 3 change(s)")
}

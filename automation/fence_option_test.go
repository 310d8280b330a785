package automation

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/internal/pulumicli"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// TestWithFence_RefusesAnEngineThatDoesNotEnforceIt: a fence needs the
// pulumi CLI Slipway builds (the fence patches); any other CLI is refused
// before anything runs (fail closed), naming the fix.
func TestWithFence_RefusesAnEngineThatDoesNotEnforceIt(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "pulumi")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho v"+toolchain.PulumiVersion+"\n"), 0o755))
	_, err := New(context.Background(), WithDir(t.TempDir()), WithResolver(toolchain.New(toolchain.WithPulumi(bin))),
		WithFence(filepath.Join(t.TempDir(), "fence")))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithFence needs Slipway's patched pulumi build (v"+toolchain.PatchedPulumiVersion+")")
	assert.Contains(t, err.Error(), "slipway toolchain build")

	e, err := New(context.Background(), WithDir(t.TempDir()), WithResolver(toolchain.New(toolchain.WithPulumi(bin))))
	require.NoError(t, err, "without a fence any CLI of the supported versions is used")
	_, set := e.e.Env()[fence.Env]
	assert.False(t, set)
}

// TestWithFence_SetAfterWithEnvAndGroupsTheCLI: with Slipway's build the
// fence file reaches the engine even when WithEnv names another one, and
// the CLI runs in a process group of its own (so its tree can be killed).
func TestWithFence_SetAfterWithEnvAndGroupsTheCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fence")
	e, err := New(context.Background(), WithDir(t.TempDir()), WithResolver(toolchain.New(toolchain.WithoutPATH())),
		WithFence(path), WithEnv(map[string]string{fence.Env: "/tenant/chosen"}))
	require.NoError(t, err)
	assert.Equal(t, path, e.e.Env()[fence.Env])
	cli, ok := e.e.Command().(pulumicli.Command)
	require.True(t, ok)
	assert.True(t, cli.Group)
}

package pulumicli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/blang/semver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPulumiCLI_RunsLikeTheAutomationAPI: the engine's CLI command is
// non-interactive, marked as the Automation API's, finds its own directory
// first in PATH, and reports the exit code.
func TestPulumiCLI_RunsLikeTheAutomationAPI(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pulumi"), []byte("#!/bin/sh\n"+
		"echo \"$*|$PULUMI_AUTOMATION_API|${PATH%%:*}|$(pwd)\"\necho err >&2\nexit ${EXIT:-0}\n"), 0o755))
	c := New(root, semver.MustParse("3.0.0"))
	assert.Equal(t, "3.0.0", c.Version().String())
	wd := t.TempDir()
	out, stderr, code, err := c.Run(context.Background(), wd, nil, nil, nil, nil, "stack", "ls")
	require.NoError(t, err)
	assert.Equal(t, "--non-interactive stack ls|true|"+bin+"|"+wd+"\n", out)
	assert.Equal(t, "err\n", stderr)
	assert.Equal(t, 0, code)
	out, _, code, err = c.Run(context.Background(), wd, nil, nil, nil, []string{"EXIT=3"}, "--non-interactive", "up", "--", "x")
	require.Error(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "--non-interactive up -- x|true|"+bin+"|"+wd+"\n", out, "the flag is not added twice")
	assert.Equal(t, []string{"A=1", "PATH=/b"}, pathFirst([]string{"A=1", "PATH="}, "/b"))
	assert.Equal(t, []string{"PATH=/b"}, pathFirst(nil, "/b"))
}

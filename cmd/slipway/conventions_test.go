package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLI_EngineConventionsAreHonoured: the environment verbs honour
// $PULUMI_BACKEND_URL (the state lands there, not in <dir>/state) and
// $KUBECONFIG, --kubeconfig wins over $KUBECONFIG, --backend over
// $PULUMI_BACKEND_URL, and each verb says which backend and cluster it acts
// on and where they came from.
func TestCLI_EngineConventionsAreHonoured(t *testing.T) {
	t.Parallel()
	dir, state := t.TempDir(), t.TempDir()
	env := []string{"PULUMI_BACKEND_URL=file://" + state, "KUBECONFIG=" + cluster.Kubeconfig}
	t.Cleanup(func() {
		if r := exe(t, dir, env, "destroy", "--yes", "--env", "cv-dev", "--kind", "dev", "--remove"); r.code != 0 {
			t.Errorf("cleanup of cv-dev: exit %d: %s", r.code, r.stderr)
		}
	})
	r := exe(t, dir, env, "up", "--env", "cv-dev", "--kind", "dev", "--set", "GREETING=hi")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "slipway: backend file://"+state+" ($PULUMI_BACKEND_URL)")
	assert.Contains(t, r.stderr, "slipway: cluster https://127.0.0.1:")
	assert.Contains(t, r.stderr, "(kubeconfig "+cluster.Kubeconfig+", from $KUBECONFIG)")
	assert.True(t, namespaceExists(t, "slipway-cv-dev"), "applied to $KUBECONFIG's cluster")
	var checkpoints []string
	require.NoError(t, filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cv-dev.json" {
			checkpoints = append(checkpoints, p)
		}
		return err
	}))
	assert.Len(t, checkpoints, 1, "the checkpoint is in $PULUMI_BACKEND_URL")
	_, err := os.Stat(filepath.Join(dir, "state"))
	assert.True(t, errors.Is(err, fs.ErrNotExist), "nothing in <dir>/state")

	// --kubeconfig wins over $KUBECONFIG; --backend over $PULUMI_BACKEND_URL.
	bad := []string{"PULUMI_BACKEND_URL=file://" + state, "KUBECONFIG=/nonexistent/kubeconfig"}
	r = exe(t, dir, bad, "preview", "--env", "cv-dev", "--kind", "dev", "--set", "GREETING=hi", "--kubeconfig", cluster.Kubeconfig, "--expect-no-changes")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "from --kubeconfig)")
	r = exe(t, dir, bad, "preview", "--env", "cv-dev", "--kind", "dev", "--set", "GREETING=hi")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, `$KUBECONFIG "/nonexistent/kubeconfig" is not a readable file`)
	r = exe(t, dir, []string{"PULUMI_BACKEND_URL=gs://bucket"}, "--backend", "file://"+state, "preview", "--env", "cv-dev", "--kind", "dev",
		"--set", "GREETING=hi", "--kubeconfig", cluster.Kubeconfig, "--expect-no-changes")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "backend file://"+state+" (--backend)")
}

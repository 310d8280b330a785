package automation

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRestoreCheckpoint_TruncatedCheckpointComesBackFromItsBackup(t *testing.T) {
	dir := t.TempDir()
	stacks := filepath.Join(dir, ".pulumi", "stacks", "proj")
	require.NoError(t, os.MkdirAll(stacks, 0o755))
	cp := filepath.Join(stacks, "dev.json")
	require.NoError(t, os.WriteFile(cp, []byte(`{"version":3,"checkpo`), 0o600)) // killed mid-write
	require.NoError(t, os.WriteFile(cp+".bak", []byte(`{"version":3,"checkpoint":{}}`), 0o600))

	broken, err := restoreCheckpoint("file://"+dir, "proj", "dev")
	require.NoError(t, err)
	require.NotEmpty(t, broken)
	b, _ := os.ReadFile(cp)
	assert.JSONEq(t, `{"version":3,"checkpoint":{}}`, string(b))
	kept, _ := os.ReadFile(broken)
	assert.Equal(t, `{"version":3,"checkpo`, string(kept), "the broken checkpoint is kept for inspection")

	again, err := restoreCheckpoint("file://"+dir, "proj", "dev")
	require.NoError(t, err)
	assert.Empty(t, again, "a valid checkpoint is left alone")

	require.NoError(t, os.WriteFile(cp, nil, 0o600))
	require.NoError(t, os.Remove(cp+".bak"))
	_, err = restoreCheckpoint("file://"+dir, "proj", "dev")
	assert.ErrorContains(t, err, "has no usable backup")

	none, err := restoreCheckpoint("s3://bucket", "proj", "dev")
	require.NoError(t, err)
	assert.Empty(t, none, "only file backends are repaired here")
}

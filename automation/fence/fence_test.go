package fence_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/statestore"
)

func TestCheck_RefusesPastTheDeadlineAndWithoutAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fence")
	ctx := context.Background()
	_, cancel, err := fence.Check(ctx, path, "write", "k")
	cancel()
	require.ErrorIs(t, err, fence.ErrFenced, "no file: fail closed")
	assert.Contains(t, err.Error(), fence.Env)

	deadline := time.Now().Add(time.Hour)
	require.NoError(t, fence.Write(path, deadline, "ns/run#2"))
	got, token, err := fence.Read(path)
	require.NoError(t, err)
	assert.Equal(t, deadline.UnixNano(), got.UnixNano())
	assert.Equal(t, "ns/run#2", token)
	wctx, cancel, err := fence.Check(ctx, path, "write", "k")
	require.NoError(t, err)
	d, ok := wctx.Deadline()
	assert.True(t, ok, "the write is bounded by the fence's deadline")
	assert.Equal(t, deadline.UnixNano(), d.UnixNano())
	cancel()

	require.NoError(t, fence.Write(path, time.Now().Add(-time.Millisecond), "ns/run#2"))
	_, cancel, err = fence.Check(ctx, path, "write", "stacks/p/s.json")
	cancel()
	require.ErrorIs(t, err, fence.ErrFenced)
	assert.Contains(t, err.Error(), "write stacks/p/s.json")
	assert.Contains(t, err.Error(), "ns/run#2")

	require.NoError(t, os.WriteFile(path, []byte("soon\n"), 0o600))
	_, cancel, err = fence.Check(ctx, path, "write", "k")
	cancel()
	require.ErrorIs(t, err, fence.ErrFenced, "a malformed file refuses")
	_, _, err = fence.Read("")
	require.Error(t, err)
	require.Error(t, fence.Write(path, time.Now(), "a\nb"), "a token cannot break the format")
}

// TestStatestore_FencedByTheEngineEnv: a Store opened with the engine's
// environment naming a fence file refuses Slipway's own record writes and
// deletes once the deadline has passed; reads go on.
func TestStatestore_FencedByTheEngineEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(t.TempDir(), "fence")
	require.NoError(t, fence.Write(path, time.Now().Add(time.Hour), "ns/run#1"))
	ctx := context.Background()
	s, err := statestore.Open(ctx, "file://"+dir, map[string]string{fence.Env: path})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Put(ctx, "notes", "a", []byte(`{}`)))
	require.NoError(t, fence.Write(path, time.Now().Add(-time.Second), "ns/run#1"))
	assert.ErrorIs(t, s.Put(ctx, "notes", "b", []byte(`{}`)), fence.ErrFenced)
	assert.ErrorIs(t, s.Create(ctx, "notes", "c", []byte(`{}`)), fence.ErrFenced)
	assert.ErrorIs(t, s.Delete(ctx, "notes", "a"), fence.ErrFenced)
	got, err := s.Get(ctx, "notes", "a")
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(got))

	unfenced, err := statestore.Open(ctx, "file://"+dir, nil)
	require.NoError(t, err)
	defer unfenced.Close()
	require.NoError(t, unfenced.Put(ctx, "notes", "b", []byte(`{}`)), "no fence without the variable")
}

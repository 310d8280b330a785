package stack

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// fileBackend makes a file backend in Pulumi's project-scoped layout whose
// stack proj/dev has the given latest deployment, and returns its URL.
func fileBackend(t *testing.T, latest string) (url, dir string) {
	t.Helper()
	dir = t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
	}
	write(".pulumi/meta.yaml", "version: 1\n")
	write(".pulumi/stacks/proj/dev.json", `{"version":3,"checkpoint":{"stack":"dev","latest":`+latest+`}}`)
	return "file://" + dir, dir
}

// TestRecover_ReadsTheCheckpointWithoutTheEngine: with a file or S3
// backend, Recover judges pending operations from the checkpoint it reads
// itself (no `pulumi stack export`: the stack here has no workspace, so any
// CLI call would fail), and still refuses what it must and removes stale
// locks.
func TestRecover_ReadsTheCheckpointWithoutTheEngine(t *testing.T) {
	ctx := context.Background()
	host, err := os.Hostname()
	require.NoError(t, err)
	bucket := `{"urn":"urn:pulumi:dev::proj::aws:s3/bucket:Bucket::b","custom":true,"type":"aws:s3/bucket:Bucket"}`

	t.Run("a pending create of a resource nobody adopts is still refused", func(t *testing.T) {
		url, _ := fileBackend(t, `{"resources":[],"pending_operations":[{"resource":`+bucket+`,"type":"creating"}]}`)
		s := &Stack{project: "proj", name: "dev", backend: url}
		rec, err := s.Recover(ctx)
		require.Error(t, err)
		assert.True(t, recovery.IsRepairRequired(err), "%v", err)
		require.Len(t, rec.PendingOperations, 1)
		assert.Equal(t, "urn:pulumi:dev::proj::aws:s3/bucket:Bucket::b", rec.PendingOperations[0].URN)
		assert.False(t, rec.PendingOperations[0].Adoptable)
	})
	t.Run("a stale lock is still removed; a clean checkpoint needs nothing else", func(t *testing.T) {
		url, dir := fileBackend(t, `{"resources":[{"urn":"urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev","type":"pulumi:pulumi:Stack"}]}`)
		lock := filepath.Join(dir, ".pulumi", "locks", "organization", "proj", "dev", "l.json")
		require.NoError(t, os.MkdirAll(filepath.Dir(lock), 0o755))
		b, err := json.Marshal(statestore.Lock{PID: 1 << 30, Username: "ci", Hostname: host, Timestamp: time.Now().Add(-time.Minute)})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(lock, b, 0o600))
		s := &Stack{project: "proj", name: "dev", backend: url}
		rec, err := s.Recover(ctx)
		require.NoError(t, err)
		assert.NoFileExists(t, lock)
		assert.Len(t, rec.StaleLocks, 1)
		assert.Empty(t, rec.PendingOperations)
		assert.False(t, rec.Refreshed)
	})
	t.Run("a stack never updated has nothing pending", func(t *testing.T) {
		url, _ := fileBackend(t, `null`)
		s := &Stack{project: "proj", name: "dev", backend: url}
		rec, err := s.Recover(ctx)
		require.NoError(t, err)
		assert.False(t, rec.Repaired())
	})
}

package statestore

import (
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realBackend is a file backend as a real up, refresh and destroy of stack
// hist/dev left it (copied from the run, see
// automation/internal/stackhistory/testdata): its update history, with a
// copy of the checkpoint beside each entry.
const realBackend = "../internal/stackhistory/testdata/backend"

// putTree writes every file under dir into s, keyed by its path below dir.
func putTree(ctx context.Context, t *testing.T, s *Store, dir string) (keys []string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return s.d.Write(ctx, filepath.ToSlash(rel), b)
	}))
	return keys
}

func TestStore_UpdateHistoryIsTheBackendsNewestFirstAndPaged(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			var history []string
			for _, k := range putTree(ctx, t, s, realBackend) {
				if strings.HasSuffix(k, ".history.json") {
					history = append(history, k)
				}
			}
			require.Len(t, history, 3, "the real backend has an update, a refresh and a destroy")
			want := func(i int) []byte { // i-th newest entry
				b, err := s.d.Read(ctx, history[len(history)-1-i])
				require.NoError(t, err)
				return b
			}

			all, err := s.UpdateHistory(ctx, "hist", "dev", 0, 0)
			require.NoError(t, err)
			require.Len(t, all, 3, "only history entries, not the checkpoint copies beside them")
			for i := range all {
				assert.Equal(t, want(i), all[i], "entry %d, newest first", i)
			}
			assert.Contains(t, string(all[0]), `"kind":"destroy"`)

			page, err := s.UpdateHistory(ctx, "hist", "dev", 1, 1)
			require.NoError(t, err)
			assert.Equal(t, [][]byte{want(0)}, page, "the newest entry (what the Automation API asks for after an up)")
			page, err = s.UpdateHistory(ctx, "hist", "dev", 2, 2)
			require.NoError(t, err)
			assert.Equal(t, [][]byte{want(2)}, page, "the last page is short")
			page, err = s.UpdateHistory(ctx, "hist", "dev", 2, 3)
			require.NoError(t, err)
			assert.Empty(t, page, "past the end")
			page, err = s.UpdateHistory(ctx, "hist", "dev", 1, 0)
			require.NoError(t, err)
			assert.Equal(t, [][]byte{want(0)}, page, "page 0 is the first")

			none, err := s.UpdateHistory(ctx, "hist", "never-updated", 1, 1)
			require.NoError(t, err)
			assert.Empty(t, none)

			// A compressed entry (PULUMI_DIY_BACKEND_GZIP) is read; one
			// compressed in a way Slipway does not read is refused.
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			_, err = zw.Write([]byte(`{"kind":"update"}`))
			require.NoError(t, err)
			require.NoError(t, zw.Close())
			require.NoError(t, s.d.Write(ctx, ".pulumi/history/hist/dev/dev-9999999999999999999.history.json.gz", gz.Bytes()))
			page, err = s.UpdateHistory(ctx, "hist", "dev", 1, 1)
			require.NoError(t, err)
			assert.Equal(t, [][]byte{[]byte(`{"kind":"update"}`)}, page)
			require.NoError(t, s.d.Write(ctx, ".pulumi/history/hist/dev/dev-9999999999999999999.history.json.zst", []byte("x")))
			_, err = s.UpdateHistory(ctx, "hist", "dev", 1, 1)
			assert.ErrorIs(t, err, ErrUnsupported)
		})
	}
}

func TestStore_UpdateHistoryInTheLegacyLayout(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "file://"+t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.d.Write(ctx, ".pulumi/history/dev/dev-1700000000000000000.history.json", []byte(`{"kind":"update"}`)))
	got, err := s.UpdateHistory(ctx, "hist", "dev", 1, 1)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte(`{"kind":"update"}`)}, got, "without meta.yaml the history is not project-scoped")
}

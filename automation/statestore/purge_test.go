package statestore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStore_PurgeRemovesAllOfARemovedStackAndNothingElse(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			put := func(keys ...string) {
				for _, k := range keys {
					require.NoError(t, s.d.Write(ctx, k, []byte("{}")))
				}
			}
			gone := []string{
				".pulumi/stacks/proj/pr-1.json.bak",
				".pulumi/backups/proj/pr-1/pr-1.1700000000.json",
				".pulumi/history/proj/pr-1/pr-1-1700000000.history.json",
				".pulumi/slipway/releases/proj/pr-1/records/r1.json",
				".pulumi/slipway/releases/proj/pr-1/checkpoints/r1.json",
				".pulumi/slipway/runs/proj/pr-1/a.json",
				".pulumi/slipway/approvals/proj/pr-1/b.json",
			}
			kept := []string{
				".pulumi/stacks/proj/pr-10.json", ".pulumi/stacks/proj/pr-10.json.bak",
				".pulumi/backups/proj/pr-10/pr-10.1.json",
				".pulumi/slipway/runs/proj/pr-10/a.json",
				".pulumi/slipway/runs/other/pr-1/a.json",
				".pulumi/slipway/releases/proj/dev/records/r1.json",
			}
			put(gone...)
			put(kept...)

			removed, err := s.Purge(ctx, "proj", "pr-1")
			require.NoError(t, err)
			assert.ElementsMatch(t, gone, removed)
			for _, k := range gone {
				_, err := s.d.Read(ctx, k)
				assert.Error(t, err, "%s is gone", k)
			}
			for _, k := range kept {
				_, err := s.d.Read(ctx, k)
				assert.NoError(t, err, "%s is kept", k)
			}

			_, err = s.Purge(ctx, "proj", "pr-10")
			require.Error(t, err, "a stack that still has a checkpoint is refused")
			assert.Contains(t, err.Error(), "remove the stack before purging it")
			_, err = s.d.Read(ctx, ".pulumi/slipway/runs/proj/pr-10/a.json")
			assert.NoError(t, err, "nothing of a refused stack is touched")
		})
	}
}

package statestore

import (
	"context"
	"io/fs"
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

func TestStore_StackTagsReadAndMergeTheFilePulumiKeeps(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			tags, err := s.StackTags(ctx, "proj", "pr-1")
			require.NoError(t, err)
			assert.Empty(t, tags, "no tags file: no tags")
			err = s.SetStackTags(ctx, "proj", "pr-1", map[string]string{"a": "1"})
			require.ErrorIs(t, err, fs.ErrNotExist, "a stack without a checkpoint is not tagged")

			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/pr-1.json", []byte("{}")))
			// The file as Pulumi writes it, with a tag of its own.
			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/pr-1.pulumi-tags", []byte(`{"version":1,"tags":{"pulumi:project":"proj"}}`)))
			require.NoError(t, s.SetStackTags(ctx, "proj", "pr-1", map[string]string{"slipway:ephemeral": "true", "slipway:key": "7"}))
			tags, err = s.StackTags(ctx, "proj", "pr-1")
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"pulumi:project": "proj", "slipway:ephemeral": "true", "slipway:key": "7"}, tags)
			b, err := s.d.Read(ctx, ".pulumi/stacks/proj/pr-1.pulumi-tags")
			require.NoError(t, err)
			assert.JSONEq(t, `{"version":1,"tags":{"pulumi:project":"proj","slipway:ephemeral":"true","slipway:key":"7"}}`, string(b))

			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/pr-1.pulumi-tags", []byte(`{"version":2,"tags":{}}`)))
			_, err = s.StackTags(ctx, "proj", "pr-1")
			assert.ErrorContains(t, err, "version 2", "an unknown format is refused, not overwritten")
		})
	}
	d, err := FileDriver(t.TempDir())
	require.NoError(t, err)
	_, err = New(d).StackTags(ctx, "proj", "pr-1")
	assert.ErrorIs(t, err, ErrNotScoped)
}

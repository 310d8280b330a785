package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// TestRelease_RollbackFromAnotherEngineUsesTheBackendHistory runs two
// plain ups from engine A and rolls back from engine B, which has another
// directory and shares only the S3 backend: the release history lives in
// the bucket, so B restores A's first version.
func TestRelease_RollbackFromAnotherEngineUsesTheBackendHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	url, be := s3Server(t, "slipway-state")
	a, b := s3Engine(t, url), s3Engine(t, url)
	const name, ns = "rel", "slipway-rel"
	v1, v2 := env(name, stacks.Dev, "v1"), env(name, stacks.Dev, "v2")
	for _, e := range []web.Environment{v1, v2} {
		st, err := a.UpsertStack(ctx, program(t, e))
		require.NoError(t, err)
		_, err = st.Up(ctx)
		require.NoError(t, err)
	}
	t.Cleanup(func() { destroyStack(t, a, name) })
	require.Equal(t, "v2", greeting(t, ns))

	recs, err := b.Releases(ctx, web.Project, name)
	require.NoError(t, err)
	require.Len(t, recs, 2, "every successful up is a release, visible from any engine on the backend")
	for i, want := range []web.Environment{v1, v2} {
		assert.Equal(t, web.Definition.Version(want), recs[i].Version)
		assert.Equal(t, automation.ReleaseApplied, recs[i].Status)
		assert.NotEmpty(t, recs[i].Update, "the stack update that applied it")
		assert.True(t, strings.HasPrefix(recs[i].Checkpoint, "s3://slipway-state/.pulumi/slipway/releases/"+web.Project+"/"+name+"/checkpoints/"), recs[i].Checkpoint)
	}
	assert.Less(t, recs[0].ID, recs[1].ID)

	res, restored, err := b.Rollback(ctx, web.Project, name, web.Definition.FromVersion)
	require.NoError(t, err)
	require.NotNil(t, restored)
	assert.Equal(t, recs[0].ID, restored.ID, "the release before the live one")
	assert.Equal(t, web.Definition.Version(v1), restored.Version)
	assert.Positive(t, res.Changes())
	assert.Equal(t, "v1", greeting(t, ns), "the first version's ConfigMap value is live again")

	recs, err = a.Releases(ctx, web.Project, name)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.Equal(t, automation.ReleaseRolledBack, recs[1].Status, "the replaced release is marked")
	assert.Equal(t, automation.ReleaseRestored, recs[2].Status)
	assert.Equal(t, web.Definition.Version(v1), recs[2].Version)
	lkg, err := a.LastKnownGood(ctx, web.Project, name)
	require.NoError(t, err)
	require.NotNil(t, lkg)
	assert.Equal(t, recs[2].ID, lkg.ID)

	// The history is in the bucket, beside the stack, and in neither engine's directory.
	objs, err := be.ListBucket("slipway-state", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	require.NoError(t, err)
	var records int
	for _, o := range objs.Contents {
		if strings.HasPrefix(o.Key, ".pulumi/slipway/releases/"+web.Project+"/"+name+"/records/") {
			records++
		}
	}
	assert.Equal(t, 3, records)
	for _, e := range []*automation.Engine{a, b} {
		for _, local := range []string{"lkg", "releases"} {
			_, err := os.Stat(filepath.Join(e.Dir(), local))
			assert.ErrorIs(t, err, os.ErrNotExist, "no local release file in %s", e.Dir())
		}
	}

	// A second rollback walks further back instead of returning to the rolled-back v2.
	_, restored, err = b.Rollback(ctx, web.Project, name, web.Definition.FromVersion)
	require.Error(t, err, "there is no good release before v1 other than v1 itself")
	assert.Nil(t, restored)
	assert.Contains(t, err.Error(), "no earlier good release")
	assert.Equal(t, "v1", greeting(t, ns))
}

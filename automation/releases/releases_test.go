package releases

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/statestore"
)

func rel(id, version, status string) Record {
	return Record{ID: id, Version: version, Status: status}
}

func TestRollbackTarget_RestoresThePreviousGoodRelease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		recs       []Record
		current    bool
		wantTarget string // ID, "" for none
		wantFrom   string
	}{
		{name: "no history", current: true},
		{name: "one release only", recs: []Record{rel("1", "v1", Applied)}, current: true},
		{name: "two ups: back to the first", recs: []Record{rel("1", "v1", Applied), rel("2", "v2", Applied)}, current: true, wantTarget: "1", wantFrom: "2"},
		{name: "same version again is skipped", recs: []Record{rel("1", "v1", Verified), rel("2", "v2", Applied), rel("3", "v2", Applied)}, current: true, wantTarget: "1", wantFrom: "3"},
		{name: "newest failed: its predecessor is live, re-apply it", recs: []Record{rel("1", "v1", Applied), rel("2", "v2", Applied), rel("3", "v3", Failed)}, current: true, wantTarget: "2"},
		{name: "an unrecorded update ran since: re-apply the newest good", recs: []Record{rel("1", "v1", Applied), rel("2", "v2", Applied)}, current: false, wantTarget: "2"},
		{name: "rolled-back releases are not restored again", recs: []Record{rel("1", "v0", Applied), rel("2", "v1", Applied), rel("3", "v2", RolledBack), rel("4", "v1", Restored)}, current: true, wantTarget: "1", wantFrom: "4"},
		{name: "a release without a version cannot be rebuilt", recs: []Record{rel("1", "", Applied), rel("2", "v2", Applied)}, current: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, from := RollbackTarget(tc.recs, tc.current)
			if tc.wantTarget == "" {
				assert.Nil(t, target)
			} else {
				require.NotNil(t, target)
				assert.Equal(t, tc.wantTarget, target.ID)
			}
			if tc.wantFrom == "" {
				assert.Nil(t, from)
			} else {
				require.NotNil(t, from)
				assert.Equal(t, tc.wantFrom, from.ID)
			}
		})
	}
}

func TestRecord_Good(t *testing.T) {
	for status, want := range map[string]bool{Applied: true, Verified: true, Restored: true, Failed: false, RolledBack: false} {
		assert.Equal(t, want, rel("1", "v", status).Good(), status)
	}
	assert.False(t, rel("1", "", Applied).Good(), "no version, nothing to rebuild")
}

func TestReleaseHistory_RoundTripsAndPrunes(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i := range MaxKept + 3 {
		status := Applied
		if i > 0 {
			status = Failed // only the oldest release is good
		}
		r := Record{ID: statestore.NewReleaseName(t0.Add(time.Duration(i) * time.Second)), Project: "proj", Stack: "dev",
			Version: fmt.Sprintf("v%d", i), Status: status, Recorded: t0}
		key, err := Write(ctx, store, r, []byte(`{"version":3,"deployment":{}}`))
		require.NoError(t, err)
		assert.Contains(t, key, ".pulumi/slipway/releases/proj/dev/checkpoints/")
		ids = append(ids, r.ID)
	}
	recs, err := List(ctx, store, "proj", "dev")
	require.NoError(t, err)
	require.Len(t, recs, MaxKept+3)
	assert.Equal(t, "v0", recs[0].Version)
	assert.Contains(t, recs[0].Checkpoint, "checkpoints/"+ids[0]+".json", "the record names its checkpoint")
	b, err := store.Read(ctx, ".pulumi/slipway/releases/proj/dev/checkpoints/"+ids[0]+".json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":3,"deployment":{}}`, string(b))

	require.NoError(t, Prune(ctx, store, "proj", "dev"))
	recs, err = List(ctx, store, "proj", "dev")
	require.NoError(t, err)
	require.Len(t, recs, MaxKept+1, "the oldest are removed, except the newest good one")
	assert.Equal(t, ids[0], recs[0].ID, "the only good release is kept")
	assert.Equal(t, ids[3], recs[1].ID)
	assert.Equal(t, ids[len(ids)-1], recs[len(recs)-1].ID)
}

// fileStore is a file backend in Pulumi's project-scoped layout.
func fileStore(t *testing.T) (*statestore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".pulumi"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".pulumi", "meta.yaml"), []byte("version: 1\n"), 0o600))
	s, err := statestore.Open(context.Background(), "file://"+dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, dir
}

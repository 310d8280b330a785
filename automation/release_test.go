package automation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/statestore"
)

func rel(id, version, status string) ReleaseRecord {
	return ReleaseRecord{ID: id, Version: version, Status: status}
}

func TestRollbackTarget_RestoresThePreviousGoodRelease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		recs       []ReleaseRecord
		current    bool
		wantTarget string // ID, "" for none
		wantFrom   string
	}{
		{name: "no history", current: true},
		{name: "one release only", recs: []ReleaseRecord{rel("1", "v1", ReleaseApplied)}, current: true},
		{name: "two ups: back to the first", recs: []ReleaseRecord{rel("1", "v1", ReleaseApplied), rel("2", "v2", ReleaseApplied)}, current: true, wantTarget: "1", wantFrom: "2"},
		{name: "same version again is skipped", recs: []ReleaseRecord{rel("1", "v1", ReleaseVerified), rel("2", "v2", ReleaseApplied), rel("3", "v2", ReleaseApplied)}, current: true, wantTarget: "1", wantFrom: "3"},
		{name: "newest failed: its predecessor is live, re-apply it", recs: []ReleaseRecord{rel("1", "v1", ReleaseApplied), rel("2", "v2", ReleaseApplied), rel("3", "v3", ReleaseFailed)}, current: true, wantTarget: "2"},
		{name: "an unrecorded update ran since: re-apply the newest good", recs: []ReleaseRecord{rel("1", "v1", ReleaseApplied), rel("2", "v2", ReleaseApplied)}, current: false, wantTarget: "2"},
		{name: "rolled-back releases are not restored again", recs: []ReleaseRecord{rel("1", "v0", ReleaseApplied), rel("2", "v1", ReleaseApplied), rel("3", "v2", ReleaseRolledBack), rel("4", "v1", ReleaseRestored)}, current: true, wantTarget: "1", wantFrom: "4"},
		{name: "a release without a version cannot be rebuilt", recs: []ReleaseRecord{rel("1", "", ReleaseApplied), rel("2", "v2", ReleaseApplied)}, current: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, from := rollbackTarget(tc.recs, tc.current)
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

func TestReleaseRecord_Good(t *testing.T) {
	for status, want := range map[string]bool{ReleaseApplied: true, ReleaseVerified: true, ReleaseRestored: true, ReleaseFailed: false, ReleaseRolledBack: false} {
		assert.Equal(t, want, rel("1", "v", status).Good(), status)
	}
	assert.False(t, rel("1", "", ReleaseApplied).Good(), "no version, nothing to rebuild")
}

func TestReleaseHistory_RoundTripsAndPrunes(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i := range maxReleases + 3 {
		status := ReleaseApplied
		if i > 0 {
			status = ReleaseFailed // only the oldest release is good
		}
		r := ReleaseRecord{ID: statestore.NewReleaseName(t0.Add(time.Duration(i) * time.Second)), Project: "proj", Stack: "dev",
			Version: fmt.Sprintf("v%d", i), Status: status, Recorded: t0}
		key, err := writeRecord(ctx, store, r, []byte(`{"version":3,"deployment":{}}`))
		require.NoError(t, err)
		assert.Contains(t, key, ".pulumi/slipway/releases/proj/dev/checkpoints/")
		ids = append(ids, r.ID)
	}
	recs, err := releases(ctx, store, "proj", "dev")
	require.NoError(t, err)
	require.Len(t, recs, maxReleases+3)
	assert.Equal(t, "v0", recs[0].Version)
	assert.Contains(t, recs[0].Checkpoint, "checkpoints/"+ids[0]+".json", "the record names its checkpoint")
	b, err := store.Read(ctx, ".pulumi/slipway/releases/proj/dev/checkpoints/"+ids[0]+".json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":3,"deployment":{}}`, string(b))

	require.NoError(t, prune(ctx, store, "proj", "dev"))
	recs, err = releases(ctx, store, "proj", "dev")
	require.NoError(t, err)
	require.Len(t, recs, maxReleases+1, "the oldest are removed, except the newest good one")
	assert.Equal(t, ids[0], recs[0].ID, "the only good release is kept")
	assert.Equal(t, ids[3], recs[1].ID)
	assert.Equal(t, ids[len(ids)-1], recs[len(recs)-1].ID)
}

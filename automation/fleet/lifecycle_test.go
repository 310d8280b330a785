package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// TestCheck_RefusesBackendsWithoutLockRecovery: only file:// and s3://
// backends pass (a runner taking over a Run can recover their locks); the
// others are refused on spec.backend.url, naming the allowed schemes and
// without the URL's credentials.
func TestCheck_RefusesBackendsWithoutLockRecovery(t *testing.T) {
	r := Registry{Definitions: []stacks.Builder{web.Definition}}
	for _, url := range []string{"gs://bucket", "azblob://container", "https://api.pulumi.com", "http://user:hunter2@state.example/x?token=t0k", "bucket"} {
		err := r.Check("team", "dev", v1alpha1.Inputs{Definition: "web", Backend: v1alpha1.Backend{URL: url}})
		var fe *FieldError
		require.ErrorAs(t, err, &fe, url)
		assert.Equal(t, "spec.backend.url", fe.Field, url)
		assert.Contains(t, err.Error(), "file://", url)
		assert.Contains(t, err.Error(), "s3://", url)
		assert.NotContains(t, err.Error(), "hunter2", url)
		assert.NotContains(t, err.Error(), "t0k", url)
	}
	for _, url := range []string{"file:///var/lib/state", "s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1"} {
		assert.NoError(t, r.Check("team", "dev", v1alpha1.Inputs{Definition: "web", Backend: v1alpha1.Backend{URL: url}}), url)
	}
}

type versioned struct {
	stacks.Builder
	v string
}

func (v versioned) DefinitionVersion() string { return v.v }

// TestRevision_ChangesWithTheDefinitionVersion: the same inputs and commit
// have a new revision when the definition's version changes (the registry's
// Version, a VersionedDefinition's own, or the binary's BuildID by default),
// and when the commit changes.
func TestRevision_ChangesWithTheDefinitionVersion(t *testing.T) {
	in := v1alpha1.Inputs{Definition: "web", Backend: v1alpha1.Backend{URL: "file:///state"}}
	v1 := Registry{Definitions: []stacks.Builder{web.Definition}, Version: "v1"}
	v2 := Registry{Definitions: []stacks.Builder{web.Definition}, Version: "v2"}
	assert.Equal(t, v1.Revision(in, "c1"), v1.Revision(in, "c1"), "deterministic")
	assert.NotEqual(t, v1.Revision(in, "c1"), v2.Revision(in, "c1"), "a new definition version")
	assert.NotEqual(t, v1.Revision(in, "c1"), v1.Revision(in, "c2"), "a new commit")
	assert.Equal(t, RevisionOf(in, "c1", ""), Revision(in, "c1"))

	def := Registry{Definitions: []stacks.Builder{web.Definition}}
	assert.NotEmpty(t, BuildID())
	assert.Equal(t, RevisionOf(in, "c1", BuildID()), def.Revision(in, "c1"), "BuildID by default")

	own := Registry{Definitions: []stacks.Builder{versioned{web.Definition, "web-7"}}, Version: "v1"}
	assert.Equal(t, "web-7", own.DefinitionVersion("web"), "the definition's own version wins")
	assert.Equal(t, RevisionOf(in, "c1", "web-7"), own.Revision(in, "c1"))
}

// TestDeletionPolicy_ProdIsOrphanedUnlessItSaysDestroy: unset, prod (given
// or from the definition's name mapping) and unresolvable kinds are orphaned,
// other kinds destroyed; an explicit policy always wins.
func TestDeletionPolicy_ProdIsOrphanedUnlessItSaysDestroy(t *testing.T) {
	r := Registry{Definitions: []stacks.Builder{web.Definition}}
	spec := func(kind string, policy v1alpha1.DeletionPolicy, definition string) v1alpha1.EnvironmentSpec {
		return v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{Definition: definition, Kind: kind}, DeletionPolicy: policy}
	}
	for _, tc := range []struct {
		name string
		spec v1alpha1.EnvironmentSpec
		want v1alpha1.DeletionPolicy
		kind stacks.Kind
	}{
		{"dev", spec("", "", "web"), v1alpha1.DeletionDestroy, stacks.Dev},
		{"pr-1", spec("ephemeral", "", "web"), v1alpha1.DeletionDestroy, stacks.Ephemeral},
		{"staging", spec("", "", "web"), v1alpha1.DeletionDestroy, stacks.Staging},
		{"prod", spec("", "", "web"), v1alpha1.DeletionOrphan, stacks.Prod},
		{"shop-prod", spec("", "", "web"), v1alpha1.DeletionOrphan, stacks.Prod},
		{"eu", spec("prod", "", "web"), v1alpha1.DeletionOrphan, stacks.Prod},
		{"eu", spec("prod", v1alpha1.DeletionDestroy, "web"), v1alpha1.DeletionDestroy, stacks.Prod},
		{"dev", spec("", v1alpha1.DeletionOrphan, "web"), v1alpha1.DeletionOrphan, stacks.Dev},
		{"gone", spec("", "", "removed-definition"), v1alpha1.DeletionOrphan, ""},
		{"production", spec("", "", "web"), v1alpha1.DeletionOrphan, ""},
	} {
		got, kind := r.DeletionPolicy(tc.name, tc.spec)
		assert.Equal(t, tc.want, got, "%s %+v", tc.name, tc.spec)
		assert.Equal(t, tc.kind, kind, tc.name)
	}
}

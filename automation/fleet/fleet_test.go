package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// TestCheck_AnEnvironmentNamedLikeNoKindNeedsSpecKind: an Environment whose
// name is not a kind and that gives no spec.kind is refused on spec.kind
// (never given dev's advisory policies); with spec.kind it is accepted, and
// the web program's own mapping ("-prod") gives it its kind.
func TestCheck_AnEnvironmentNamedLikeNoKindNeedsSpecKind(t *testing.T) {
	r := Registry{Definitions: []stacks.Builder{web.Definition}, Packs: all.Packs()}
	in := v1alpha1.Inputs{Definition: "web", Backend: v1alpha1.Backend{URL: "file:///state"}, Policy: v1alpha1.Policy{Packs: []string{"kubernetes"}}}
	for _, name := range []string{"production", "prod-eu", "pr-42"} {
		err := r.Check("team", name, in)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, name)
		assert.Equal(t, "spec.kind", fe.Field, name)
		var ke *stacks.KindError
		assert.ErrorAs(t, err, &ke, name)

		given := in
		given.Kind = "prod"
		assert.NoError(t, r.Check("team", name, given), name)
		k, err := Kind(web.Definition, name, given)
		require.NoError(t, err)
		assert.Equal(t, stacks.Prod, k)
	}
	k, err := Kind(web.Definition, "shop-prod", in)
	require.NoError(t, err)
	assert.Equal(t, stacks.Prod, k, "the program's own mapping")
	assert.NoError(t, r.Check("team", "shop-prod", in))
}

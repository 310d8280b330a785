package policy_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/examples/minimal"
	"github.com/slipwayhq/slipway/examples/policy"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// TestMain serves the acme pack (beside Slipway's) as the engine's policy
// analyzer, and shares one local cluster among the package's live tests.
func TestMain(m *testing.M) { slipwaytest.Main(m, policy.Pack()) }

// In the real engine: a preview of examples/minimal's prod environment
// under the acme pack is blocked by required-labels (its Namespace has no
// team or cost-center label), and nothing is applied; with the labels the
// environment asks for configured away, the same preview passes.
func TestPack_BlocksAPreviewInTheEngine(t *testing.T) {
	t.Parallel()
	e := minimal.Definition.Env("prod-"+strings.ToLower(rand.Text()[:6]), stacks.Prod)
	e.Kubeconfig = slipwaytest.Kubeconfig(t)
	prog, err := minimal.Definition.Program(e)
	require.NoError(t, err)
	env := slipwaytest.New(t, prog, slipwaytest.WithoutUp(), slipwaytest.WithPolicies(policypacks.Settings{Kind: "prod"}, policy.Pack()))
	_, err = env.PreviewE()
	require.True(t, automation.IsPolicyBlocked(err), "blocked by the pack: %v", err)
	var pe *automation.PolicyBlockedError
	require.True(t, errors.As(err, &pe))
	require.NotEmpty(t, pe.Violations)
	assert.Equal(t, "acme", pe.Violations[0].Pack)
	assert.Equal(t, "required-labels", pe.Violations[0].Policy)
	assert.Contains(t, pe.Violations[0].Message, "lacks the label(s) team, cost-center")

	relaxed := policypacks.Settings{Kind: "prod", Overrides: map[string]policypacks.Override{
		"required-labels": {Config: map[string]any{"labels": []any{}}}}}
	prog2, err := minimal.Definition.Program(e)
	require.NoError(t, err)
	env2 := slipwaytest.New(t, prog2, slipwaytest.WithoutUp(), slipwaytest.WithPolicies(relaxed, policy.Pack()))
	_, err = env2.PreviewE()
	assert.NoError(t, err)
}

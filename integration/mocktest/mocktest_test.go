package mocktest

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/policypacks"
)

func twoResources(ctx *pulumi.Context) error {
	var first pulumi.CustomResourceState
	if err := ctx.RegisterResource("test:index:Thing", "first", pulumi.Map{"name": pulumi.String("a")}, &first); err != nil {
		return err
	}
	var second pulumi.CustomResourceState
	return ctx.RegisterResource("test:index:Thing", "second", pulumi.Map{
		"ref":      pulumi.Sprintf("ref-%s", first.ID()),
		"password": pulumi.ToSecret(pulumi.String("hunter2")),
		"nested":   pulumi.Map{"token": pulumi.ToSecret(pulumi.String("t")), "plain": pulumi.String("p")},
	}, &second, pulumi.IgnoreChanges([]string{"ref"}))
}

// TestRun_PreviewKeepsUnknownsAsPolicyUnknown: in a Preview run an input
// computed from another resource's id is policypacks.Unknown, in the plain
// inputs and in the policy resources (so policies report it unverified);
// in an update run it is known.
func TestRun_PreviewKeepsUnknownsAsPolicyUnknown(t *testing.T) {
	g, err := Run(twoResources, nil, Preview())
	require.NoError(t, err)
	second, ok := g.Named("test:index:Thing", "second")
	require.True(t, ok)
	assert.Equal(t, policypacks.Unknown, second.Inputs["ref"])
	rs := g.PolicyResources()
	require.Len(t, rs, 2)
	_, st := rs[1].Props.Get("ref")
	assert.Equal(t, policypacks.Unknowable, st)
	props := g.AnalyzerResources()[1].Properties
	assert.True(t, props.HasComputed(), "the analyzer view keeps the unknown too")

	g, err = Run(twoResources, nil)
	require.NoError(t, err)
	second, _ = g.Named("test:index:Thing", "second")
	assert.Equal(t, "ref-first-id", second.Inputs["ref"])
}

// TestRun_RecordsSecretsAndOptions: secret inputs are unwrapped in Inputs
// and listed in SecretPaths; IgnoreChanges is recorded.
func TestRun_RecordsSecretsAndOptions(t *testing.T) {
	g, err := Run(twoResources, nil)
	require.NoError(t, err)
	second, _ := g.Named("test:index:Thing", "second")
	assert.Equal(t, "hunter2", second.Inputs["password"])
	assert.Equal(t, []string{"nested.token", "password"}, second.SecretPaths)
	assert.Equal(t, []string{"ref"}, second.IgnoreChanges)
	first, _ := g.Named("test:index:Thing", "first")
	assert.Empty(t, first.SecretPaths)
}

// TestRun_ConfigReachesTheProgramWithItsSecrecy: Config values reach the
// program; the keys named secret are secret (as config.GetSecret sees them).
func TestRun_ConfigReachesTheProgramWithItsSecrecy(t *testing.T) {
	var plain string
	var secret, plainIsSecret bool
	_, err := Run(func(ctx *pulumi.Context) error {
		plain, _ = ctx.GetConfig("slipway:plain")
		secret = ctx.IsConfigSecret("slipway:hidden")
		plainIsSecret = ctx.IsConfigSecret("slipway:plain")
		return nil
	}, nil, Config(map[string]string{"slipway:plain": "p", "slipway:hidden": "h"}, "slipway:hidden"))
	require.NoError(t, err)
	assert.Equal(t, "p", plain)
	assert.True(t, secret)
	assert.False(t, plainIsSecret)
}

// TestRun_UnderTheProgramsOwnNames: Mocks.Project and Mocks.Stack set the
// names the program sees and its URNs (as the engine would give them).
func TestRun_UnderTheProgramsOwnNames(t *testing.T) {
	var seen string
	g, err := Run(func(ctx *pulumi.Context) error {
		seen = ctx.Project() + "/" + ctx.Stack()
		return twoResources(ctx)
	}, &Mocks{Project: "shop", Stack: "prod"}, Preview())
	require.NoError(t, err)
	assert.Equal(t, "shop/prod", seen)
	r, ok := g.Named("test:index:Thing", "first")
	require.True(t, ok)
	assert.Equal(t, "urn:pulumi:prod::shop::test:index:Thing::first", r.URN)

	g, err = Run(twoResources, nil)
	require.NoError(t, err)
	r, _ = g.Named("test:index:Thing", "first")
	assert.Equal(t, "urn:pulumi:"+Stack+"::"+Project+"::test:index:Thing::first", r.URN, "the defaults")
}

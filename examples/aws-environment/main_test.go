package main

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
)

func TestProgram_UnderMocks(t *testing.T) {
	g, err := mocktest.Run(Program, nil)
	require.NoError(t, err)
	assert.Equal(t, 9, g.Count("aws:ec2/subnet:Subnet"))
	assert.Equal(t, 3, g.Count("aws:ec2/natGateway:NatGateway"))
	assert.Equal(t, 2, g.Count("aws:eks/nodeGroup:NodeGroup"))
	assert.Equal(t, 1, g.Count("aws:eks/cluster:Cluster"))
	assert.Equal(t, 1, g.Count("kubernetes:apps/v1:Deployment"), "canary strategy starts with stable only")
	for _, b := range g.OfType("aws:s3/bucketV2:BucketV2") {
		assert.True(t, b.Protect, b.Name)
	}
}

// BenchmarkProductionEnvironment measures synthesising the whole production
// environment under mocks; it reports the resource count.
func BenchmarkProductionEnvironment(b *testing.B) {
	var n int
	for i := 0; i < b.N; i++ {
		g, err := mocktest.Run(Program, nil)
		if err != nil {
			b.Fatal(err)
		}
		n = len(g.Resources)
	}
	b.ReportMetric(float64(n), "resources")
}

// TestProgram_PassesEveryPack: the composed production environment passes
// the AWS, Kubernetes and cost packs as prod.
func TestProgram_PassesEveryPack(t *testing.T) {
	g, err := mocktest.Run(Program, nil)
	require.NoError(t, err)
	rep := policypacks.Evaluate(g.PolicyResources(), policypacks.Settings{Kind: "prod"}, all.Packs()...)
	assert.Empty(t, rep.Results, "%+v", rep.Results)
	assert.True(t, rep.Passed())
}

// TestProgram_EngineAndInProcessPolicyParity: the analyzer the engine runs
// and in-process evaluation agree on every finding of the example at every
// enforcement level, in an update and in a preview (unknown ids), judged as
// prod (where it passes) and as dev (where the cost guard finds its
// production-sized node groups and per-AZ NAT gateways).
func TestProgram_EngineAndInProcessPolicyParity(t *testing.T) {
	packs := all.Packs()
	for _, preview := range []bool{false, true} {
		var opts []pulumi.RunOption
		if preview {
			opts = append(opts, mocktest.Preview())
		}
		g, err := mocktest.Run(Program, nil, opts...)
		require.NoError(t, err)
		require.NotEmpty(t, g.Resources)
		for _, env := range []string{"dev", "prod"} {
			for _, level := range []policypacks.Enforcement{"", policypacks.Advisory, policypacks.Mandatory, policypacks.Remediate, policypacks.Disabled} {
				s := policypacks.Settings{Kind: env}
				if level != "" {
					s.Overrides = map[string]policypacks.Override{}
					for _, pack := range packs {
						for _, pol := range pack.Policies {
							s.Overrides[pol.Name] = policypacks.Override{Enforcement: level}
						}
					}
				}
				in := g.InProcessFindings(s, packs...)
				en, err := g.EngineFindings(s, packs...)
				require.NoError(t, err)
				assert.Equal(t, in, en, "preview %v, %s, level %q", preview, env, level)
				if env == "dev" && level != policypacks.Disabled {
					assert.NotEmpty(t, in, "dev's cost guard finds the production sizes (level %q)", level)
				}
				if env == "dev" && (level == policypacks.Mandatory || level == policypacks.Remediate) {
					assert.Contains(t, strings.Join(in, "\n"), "instance-types", "blocking at %s", level)
					assert.NotContains(t, strings.Join(in, "\n"), " "+mocktest.Advisory, "every verified finding blocks at %s", level)
				}
			}
		}
	}
}

package main

import (
	"testing"

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
	rep := policypacks.Evaluate(g.PolicyResources(), policypacks.Settings{Environment: "prod"}, all.Packs()...)
	assert.Empty(t, rep.Results, "%+v", rep.Results)
	assert.True(t, rep.Passed())
}

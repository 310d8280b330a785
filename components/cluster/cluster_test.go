package cluster

import (
	"encoding/json"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
)

func base() Args {
	return Args{Name: "prod", VpcID: pulumi.String("vpc-1"), SubnetIDs: pulumi.ToStringArray([]string{"s-1", "s-2", "s-3"})}
}

func run(t *testing.T, args Args) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := New(ctx, "eks", args)
		return err
	}, nil)
	require.NoError(t, err)
	return g
}

func TestCluster_SecureByDefault(t *testing.T) {
	g := run(t, base())
	c := g.OfType("aws:eks/cluster:Cluster")
	require.Len(t, c, 1)
	in := c[0].Inputs
	assert.Equal(t, true, mocktest.Dig(in, "vpcConfig", "endpointPrivateAccess"))
	assert.Equal(t, false, mocktest.Dig(in, "vpcConfig", "endpointPublicAccess"), "private endpoint only by default")
	assert.Nil(t, mocktest.Dig(in, "vpcConfig", "publicAccessCidrs"))
	assert.ElementsMatch(t, []any{"api", "audit", "authenticator", "controllerManager", "scheduler"}, in["enabledClusterLogTypes"])
	assert.Equal(t, []any{"secrets"}, mocktest.Dig(in, "encryptionConfig", "resources"))
	assert.NotEmpty(t, mocktest.Dig(in, "encryptionConfig", "provider", "keyArn"))
	key := g.OfType("aws:kms/key:Key")[0].Inputs
	assert.Equal(t, true, key["enableKeyRotation"])

	assert.Equal(t, 1, g.Count("aws:iam/openIdConnectProvider:OpenIdConnectProvider"), "IRSA")
	oidc := g.OfType("aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0].Inputs
	assert.Equal(t, "https://oidc.eks.us-east-1.amazonaws.com/id/ABC", oidc["url"], "the cluster's issuer")
	assert.Equal(t, 1, g.Count("aws:eks/nodeGroup:NodeGroup"))
	assert.Equal(t, len(DefaultAddons), g.Count("aws:eks/addon:Addon"))
	assert.Equal(t, 1, g.Count("pulumi:providers:kubernetes"), "a ready Kubernetes provider")

	lt := g.OfType("aws:ec2/launchTemplate:LaunchTemplate")[0].Inputs
	assert.Equal(t, "required", mocktest.Dig(lt, "metadataOptions", "httpTokens"), "IMDSv2")
	assert.Equal(t, "true", mocktest.Dig(lt, "blockDeviceMappings", 0, "ebs", "encrypted"))
	ng := g.OfType("aws:eks/nodeGroup:NodeGroup")[0].Inputs
	assert.EqualValues(t, 2, mocktest.Dig(ng, "scalingConfig", "desiredSize"))
	assert.Equal(t, []any{"s-1", "s-2", "s-3"}, ng["subnetIds"])

	lg := g.OfType("aws:cloudwatch/logGroup:LogGroup")[0].Inputs
	assert.Equal(t, "/aws/eks/prod/cluster", lg["name"])
	assert.EqualValues(t, 365, lg["retentionInDays"])

	comp, _ := g.Named(Type, "eks")
	for _, r := range g.Resources {
		if r.Type != Type {
			assert.Equal(t, comp.URN, r.Parent, r.Name)
		}
	}
}

func TestCluster_Overrides(t *testing.T) {
	a := base()
	a.PublicAccessCIDRs = []string{"203.0.113.0/24"}
	a.KMSKeyARN = pulumi.String("arn:aws:kms:us-east-1:1:key/k")
	a.NodeGroups = []NodeGroup{
		{Name: "system", InstanceTypes: []string{"m6i.large"}, MinSize: 2, DesiredSize: 2, MaxSize: 4},
		{Name: "batch", InstanceTypes: []string{"c6i.xlarge"}, MinSize: 0, DesiredSize: 0, MaxSize: 10, Spot: true,
			Labels: map[string]string{"workload": "batch"}, Taints: []Taint{{Key: "batch", Value: "true", Effect: "NO_SCHEDULE"}}},
	}
	a.Addons = []string{"vpc-cni"}
	g := run(t, a)
	in := g.OfType("aws:eks/cluster:Cluster")[0].Inputs
	assert.Equal(t, true, mocktest.Dig(in, "vpcConfig", "endpointPublicAccess"))
	assert.Equal(t, []any{"203.0.113.0/24"}, mocktest.Dig(in, "vpcConfig", "publicAccessCidrs"))
	assert.Zero(t, g.Count("aws:kms/key:Key"))
	assert.Equal(t, 2, g.Count("aws:eks/nodeGroup:NodeGroup"))
	assert.Equal(t, 1, g.Count("aws:eks/addon:Addon"))
	batch, ok := g.Named("aws:eks/nodeGroup:NodeGroup", "eks-batch")
	require.True(t, ok)
	assert.Equal(t, "SPOT", batch.Inputs["capacityType"])
	assert.Equal(t, "NO_SCHEDULE", mocktest.Dig(batch.Inputs, "taints", 0, "effect"))
	assert.Equal(t, "batch", mocktest.Dig(batch.Inputs, "labels", "workload"))
}

func TestKubeconfig_UsesExecAuth(t *testing.T) {
	kc, err := Kubeconfig("prod", "https://x.eks.amazonaws.com", "Q0E=")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(kc), &m))
	assert.Equal(t, "aws", mocktest.Dig(m, "users", 0, "user", "exec", "command"))
	assert.NotContains(t, kc, "token:", "no static credentials")
}

func TestCluster_ValidationErrorsNameTheField(t *testing.T) {
	mod := func(f func(*Args)) Args { a := base(); f(&a); return a }
	cases := map[string]struct {
		args Args
		want string
	}{
		"name":          {mod(func(a *Args) { a.Name = "" }), "Args.Name \"\""},
		"version":       {mod(func(a *Args) { a.Version = "1.10" }), "Args.Version \"1.10\""},
		"no vpc":        {mod(func(a *Args) { a.VpcID = nil }), "Args.VpcID and Args.SubnetIDs are required"},
		"open endpoint": {mod(func(a *Args) { a.PublicAccessCIDRs = []string{"0.0.0.0/0"} }), "opens the API endpoint to the internet"},
		"bad cidr":      {mod(func(a *Args) { a.PublicAccessCIDRs = []string{"office"} }), "Args.PublicAccessCIDRs[0] \"office\" is not a CIDR"},
		"log type":      {mod(func(a *Args) { a.LogTypes = []string{"kubelet"} }), "Args.LogTypes[0] \"kubelet\""},
		"sizes":         {mod(func(a *Args) { a.NodeGroups = []NodeGroup{{Name: "g", MinSize: 3, DesiredSize: 2, MaxSize: 5}} }), "Args.NodeGroups[0] sizes min 3 / desired 2 / max 5"},
		"too big":       {mod(func(a *Args) { a.NodeGroups = []NodeGroup{{Name: "g", MinSize: 1, DesiredSize: 1, MaxSize: 5000}} }), "Args.NodeGroups[0].MaxSize 5000"},
		"instance":      {mod(func(a *Args) { a.NodeGroups = []NodeGroup{{Name: "g", InstanceTypes: []string{"huge"}}} }), "Args.NodeGroups[0].InstanceTypes[0] \"huge\""},
		"dup group":     {mod(func(a *Args) { a.NodeGroups = []NodeGroup{{Name: "g"}, {Name: "g"}} }), "Args.NodeGroups[1].Name \"g\" must be unique"},
		"taint": {mod(func(a *Args) {
			a.NodeGroups = []NodeGroup{{Name: "g", Taints: []Taint{{Key: "k", Effect: "NoSchedule"}}}}
		}), "Args.NodeGroups[0].Taints[0]"},
		"disk": {mod(func(a *Args) { a.NodeGroups = []NodeGroup{{Name: "g", DiskSizeGiB: 5}} }), "Args.NodeGroups[0].DiskSizeGiB 5"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := mocktest.Run(func(ctx *pulumi.Context) error {
				_, err := New(ctx, "eks", tc.args)
				return err
			}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "cluster: ")
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, g.Resources)
		})
	}
}

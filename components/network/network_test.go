package network

import (
	"net/netip"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
)

func run(t *testing.T, args Args) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := New(ctx, "vpc", args)
		return err
	}, nil)
	require.NoError(t, err)
	return g
}

func TestNetwork_SecureByDefault(t *testing.T) {
	g := run(t, Args{Tags: map[string]string{"env": "prod"}})
	assert.Equal(t, 1, g.Count("aws:ec2/vpc:Vpc"))
	assert.Equal(t, 9, g.Count("aws:ec2/subnet:Subnet"), "3 AZs × 3 tiers")
	assert.Equal(t, 1, g.Count("aws:ec2/internetGateway:InternetGateway"))
	assert.Equal(t, 1, g.Count("aws:ec2/natGateway:NatGateway"), "single NAT by default")
	assert.Equal(t, 1+3+1, g.Count("aws:ec2/routeTable:RouteTable"), "public, one private per AZ, isolated")
	assert.Equal(t, 9, g.Count("aws:ec2/routeTableAssociation:RouteTableAssociation"))
	assert.Equal(t, 2, g.Count("aws:ec2/vpcEndpoint:VpcEndpoint"))
	assert.Equal(t, 1, g.Count("aws:ec2/flowLog:FlowLog"))
	assert.Equal(t, 1, g.Count("aws:cloudwatch/logGroup:LogGroup"))

	dsg := g.OfType("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
	require.Len(t, dsg, 1)
	assert.Empty(t, dsg[0].Inputs["ingress"], "the default security group has no ingress rules")
	assert.Empty(t, dsg[0].Inputs["egress"], "nor egress rules")

	fl := g.OfType("aws:ec2/flowLog:FlowLog")[0].Inputs
	assert.Equal(t, "ALL", fl["trafficType"])
	lg := g.OfType("aws:cloudwatch/logGroup:LogGroup")[0].Inputs
	assert.EqualValues(t, 365, lg["retentionInDays"])

	for _, e := range g.OfType("aws:ec2/vpcEndpoint:VpcEndpoint") {
		assert.Equal(t, "Gateway", e.Inputs["vpcEndpointType"])
		assert.Len(t, e.Inputs["routeTableIds"], 4, "private and isolated route tables")
		assert.Contains(t, []any{"com.amazonaws.us-east-1.s3", "com.amazonaws.us-east-1.dynamodb"}, e.Inputs["serviceName"])
	}
	comp, _ := g.Named(Type, "vpc")
	for _, r := range g.Resources {
		if r.Type == Type {
			continue
		}
		assert.Equal(t, comp.URN, r.Parent, "%s %s", r.Type, r.Name)
		if tags, ok := r.Inputs["tags"]; ok {
			assert.Equal(t, "prod", tags.(map[string]any)["env"], "%s %s carries the common tags", r.Type, r.Name)
			assert.NotEmpty(t, tags.(map[string]any)["Name"])
		} else if r.Type != "aws:ec2/routeTableAssociation:RouteTableAssociation" && r.Type != "aws:iam/rolePolicy:RolePolicy" {
			t.Errorf("%s %s has no tags", r.Type, r.Name)
		}
	}
	for _, s := range g.OfType("aws:ec2/subnet:Subnet") {
		assert.Equal(t, false, s.Inputs["mapPublicIpOnLaunch"], "no public IPs by default")
	}
}

func TestNetwork_NATStrategies(t *testing.T) {
	assert.Equal(t, 3, run(t, Args{NAT: NATPerAZ}).Count("aws:ec2/natGateway:NatGateway"))
	g := run(t, Args{NAT: NATNone})
	assert.Zero(t, g.Count("aws:ec2/natGateway:NatGateway"))
	assert.Zero(t, g.Count("aws:ec2/eip:Eip"))
	for _, rt := range g.OfType("aws:ec2/routeTable:RouteTable") {
		if rt.Name != "vpc-public" {
			assert.Empty(t, rt.Inputs["routes"], "%s: no route out without NAT", rt.Name)
		}
	}
}

func TestNetwork_Overrides(t *testing.T) {
	g := run(t, Args{CIDR: "172.16.0.0/20", AvailabilityZones: []string{"eu-west-1a", "eu-west-1b"}, NoIsolated: true,
		DisableFlowLogs: true, DisableGatewayEndpoints: true})
	assert.Equal(t, 4, g.Count("aws:ec2/subnet:Subnet"))
	assert.Zero(t, g.Count("aws:ec2/flowLog:FlowLog"))
	assert.Zero(t, g.Count("aws:ec2/vpcEndpoint:VpcEndpoint"))
	s, ok := g.Named("aws:ec2/subnet:Subnet", "vpc-private-eu-west-1b")
	require.True(t, ok)
	assert.Equal(t, "eu-west-1b", s.Inputs["availabilityZone"])
}

func TestPlan_AllocatesAlignedNonOverlappingSubnets(t *testing.T) {
	plan, err := Plan("10.0.0.0/16", []string{"a", "b", "c"}, []Tier{Public, Private, Isolated}, Sizes{})
	require.NoError(t, err)
	require.Len(t, plan, 9)
	block := netip.MustParsePrefix("10.0.0.0/16")
	for _, s := range plan {
		assert.True(t, block.Contains(s.CIDR.Addr()))
		assert.Equal(t, s.CIDR.Masked(), s.CIDR, "aligned")
	}
	require.NoError(t, Overlaps(plan))
	bySize := map[Tier]int{}
	for _, s := range plan {
		bySize[s.Tier] = s.CIDR.Bits()
	}
	assert.Equal(t, map[Tier]int{Public: 21, Private: 19, Isolated: 21}, bySize, "private gets the most room")

	plan, err = Plan("10.1.0.0/16", []string{"a", "b"}, []Tier{Public, Private}, Sizes{Public: 24, Private: 20})
	require.NoError(t, err)
	assert.Equal(t, "10.1.0.0/24", plan[0].CIDR.String())
	assert.Equal(t, "10.1.1.0/24", plan[1].CIDR.String())
	assert.Equal(t, "10.1.16.0/20", plan[2].CIDR.String(), "aligned up to the next /20")
}

func TestNetwork_ValidationErrorsNameTheField(t *testing.T) {
	cases := map[string]struct {
		args Args
		want string
	}{
		"malformed cidr":     {Args{CIDR: "10.0.0/16"}, `Args.CIDR "10.0.0/16" is not an IPv4 CIDR block`},
		"host bits":          {Args{CIDR: "10.0.1.0/16"}, "has host bits set; use 10.0.0.0/16"},
		"too large":          {Args{CIDR: "10.0.0.0/8"}, "must be between /16 and /24"},
		"too small for azs":  {Args{CIDR: "10.0.0.0/24", AZCount: 6}, "is too small for 6 AZs × 3 tiers"},
		"zero azs":           {Args{AZCount: -1}, "Args.AZCount -1 is out of range"},
		"too many azs":       {Args{AZCount: 7}, "Args.AZCount 7 is out of range"},
		"repeated az":        {Args{AvailabilityZones: []string{"a", "a"}}, "Args.AvailabilityZones[1] \"a\" is empty or repeated"},
		"no tiers":           {Args{NoPublic: true, NoPrivate: true, NoIsolated: true, NAT: NATNone}, "keep at least one"},
		"nat without public": {Args{NoPublic: true, NAT: NATPerAZ}, `Args.NAT "per-az" needs public subnets`},
		"nat no private":     {Args{NoPrivate: true, NAT: NATSingle}, "serves private subnets and there are none"},
		"bad nat":            {Args{NAT: "double"}, `Args.NAT "double" is not a NAT strategy`},
		"retention":          {Args{FlowLogRetentionDays: 10}, "Args.FlowLogRetentionDays 10"},
		"subnet size":        {Args{SubnetSizes: Sizes{Public: 30}}, "Args.SubnetSizes.Public /30"},
		"does not fit":       {Args{CIDR: "10.0.0.0/20", SubnetSizes: Sizes{Private: 21}}, "subnets do not fit"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := mocktest.Run(func(ctx *pulumi.Context) error {
				_, err := New(ctx, "vpc", tc.args)
				return err
			}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, g.Resources)
		})
	}
}

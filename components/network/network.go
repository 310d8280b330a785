// Package network is an AWS VPC for a Slipway environment: one CIDR block
// split automatically into public, private and isolated subnets across
// availability zones, an internet gateway, route tables, NAT (none, single or
// one per AZ), VPC flow logs to CloudWatch Logs, the default security group
// stripped of every rule, S3 and DynamoDB gateway endpoints, and tags on every
// resource. The zero value of Args (plus nothing) is the secure default.
package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Type is the Pulumi type token of the component.
const Type = "slipway:network:Network"

// NAT strategies.
const (
	NATNone   = "none"
	NATSingle = "single"
	NATPerAZ  = "per-az"
)

// Args configures a Network. Every zero value is a secure, working default.
type Args struct {
	// CIDR is the VPC's IPv4 block (default "10.0.0.0/16"; /16 to /24).
	CIDR string
	// AvailabilityZones names the AZs to use. When empty, the first AZCount
	// zones of the region are used.
	AvailabilityZones []string
	// AZCount is the number of AZs when AvailabilityZones is empty (default 3, at most 6).
	AZCount int
	// NoPublic, NoPrivate and NoIsolated turn tiers off (all three are on by default).
	NoPublic, NoPrivate, NoIsolated bool
	// SubnetSizes overrides automatic subnet prefix lengths per tier.
	SubnetSizes Sizes
	// NAT is "none", "single" (default when there are public and private subnets) or "per-az".
	NAT string
	// DisableFlowLogs turns VPC flow logs off (they are on by default).
	DisableFlowLogs bool
	// FlowLogRetentionDays is the log group retention (default 365).
	FlowLogRetentionDays int
	// DisableGatewayEndpoints turns off the S3 and DynamoDB gateway endpoints.
	DisableGatewayEndpoints bool
	// Tags are added to every resource (with a Name tag per resource).
	Tags map[string]string
}

// Network is the component.
type Network struct {
	pulumi.ResourceState

	VpcID             pulumi.StringOutput
	CIDR              string
	PublicSubnetIDs   pulumi.StringArrayOutput
	PrivateSubnetIDs  pulumi.StringArrayOutput
	IsolatedSubnetIDs pulumi.StringArrayOutput
	// Subnets is the subnet plan (tier, AZ, CIDR) that was applied.
	Subnets []Subnet
}

func (a Args) withDefaults() Args {
	if a.CIDR == "" {
		a.CIDR = "10.0.0.0/16"
	}
	if a.AZCount == 0 && len(a.AvailabilityZones) == 0 {
		a.AZCount = 3
	}
	if len(a.AvailabilityZones) > 0 {
		a.AZCount = len(a.AvailabilityZones)
	}
	if a.NAT == "" {
		a.NAT = NATNone
		if !a.NoPublic && !a.NoPrivate {
			a.NAT = NATSingle
		}
	}
	if a.FlowLogRetentionDays == 0 {
		a.FlowLogRetentionDays = 365
	}
	return a
}

func (a Args) tiers() []Tier {
	var t []Tier
	if !a.NoPublic {
		t = append(t, Public)
	}
	if !a.NoPrivate {
		t = append(t, Private)
	}
	if !a.NoIsolated {
		t = append(t, Isolated)
	}
	return t
}

// retentionDays are the values CloudWatch Logs accepts.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Validate checks the arguments that do not need the AWS account (everything
// but the AZ lookup) and reports each problem with its field and fix.
func (a Args) Validate() error {
	a = a.withDefaults()
	var errs []error
	if a.AZCount < 1 || a.AZCount > 6 {
		errs = append(errs, fmt.Errorf("network: Args.AZCount %d is out of range; use 1 to 6 availability zones", a.AZCount))
	}
	seen := map[string]bool{}
	for i, az := range a.AvailabilityZones {
		if az == "" || seen[az] {
			errs = append(errs, fmt.Errorf("network: Args.AvailabilityZones[%d] %q is empty or repeated; list each zone once", i, az))
		}
		seen[az] = true
	}
	tiers := a.tiers()
	if len(tiers) == 0 {
		errs = append(errs, errors.New("network: Args.NoPublic, NoPrivate and NoIsolated turn off every tier; keep at least one"))
	}
	switch a.NAT {
	case NATNone:
	case NATSingle, NATPerAZ:
		if a.NoPublic {
			errs = append(errs, fmt.Errorf("network: Args.NAT %q needs public subnets for the NAT gateways; enable them or use NAT \"none\"", a.NAT))
		}
		if a.NoPrivate {
			errs = append(errs, fmt.Errorf("network: Args.NAT %q serves private subnets and there are none; use NAT \"none\"", a.NAT))
		}
	default:
		errs = append(errs, fmt.Errorf("network: Args.NAT %q is not a NAT strategy; use none, single or per-az", a.NAT))
	}
	if !slices.Contains(retentionDays, a.FlowLogRetentionDays) {
		errs = append(errs, fmt.Errorf("network: Args.FlowLogRetentionDays %d is not a CloudWatch retention; use one of %v", a.FlowLogRetentionDays, retentionDays))
	}
	if len(errs) == 0 && len(tiers) > 0 {
		azs := a.AvailabilityZones
		if len(azs) == 0 {
			azs = make([]string, a.AZCount)
			for i := range azs {
				azs[i] = fmt.Sprintf("az%d", i)
			}
		}
		if _, err := Plan(a.CIDR, azs, tiers, a.SubnetSizes); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// New registers the network. Invalid Args fail before any resource is registered.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Network, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	a := args.withDefaults()
	azs := a.AvailabilityZones
	if len(azs) == 0 {
		res, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")})
		if err != nil {
			return nil, fmt.Errorf("network: looking up availability zones: %w", err)
		}
		if len(res.Names) < a.AZCount {
			return nil, fmt.Errorf("network: Args.AZCount %d but the region has %d available zones; lower it", a.AZCount, len(res.Names))
		}
		azs = res.Names[:a.AZCount]
	}
	plan, err := Plan(a.CIDR, azs, a.tiers(), a.SubnetSizes)
	if err != nil {
		return nil, err
	}
	n := &Network{CIDR: a.CIDR, Subnets: plan}
	if err := ctx.RegisterComponentResource(Type, name, n, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(n)
	tags := func(resName string) pulumi.StringMap {
		m := pulumi.StringMap{"Name": pulumi.String(resName), "slipway:component": pulumi.String(name)}
		for k, v := range a.Tags {
			m[k] = pulumi.String(v)
		}
		return m
	}

	vpc, err := ec2.NewVpc(ctx, name, &ec2.VpcArgs{
		CidrBlock: pulumi.String(a.CIDR), EnableDnsHostnames: pulumi.Bool(true), EnableDnsSupport: pulumi.Bool(true),
		Tags: tags(name),
	}, child)
	if err != nil {
		return nil, err
	}
	// The default security group allows all traffic between its members; manage it with no rules.
	if _, err := ec2.NewDefaultSecurityGroup(ctx, name+"-default", &ec2.DefaultSecurityGroupArgs{
		VpcId: vpc.ID(), Tags: tags(name + "-default"),
	}, child); err != nil {
		return nil, err
	}

	subnets := map[Tier][]*ec2.Subnet{}
	for _, s := range plan {
		sn := fmt.Sprintf("%s-%s-%s", name, s.Tier, s.AZ)
		sub, err := ec2.NewSubnet(ctx, sn, &ec2.SubnetArgs{
			VpcId: vpc.ID(), CidrBlock: pulumi.String(s.CIDR.String()), AvailabilityZone: pulumi.String(s.AZ),
			MapPublicIpOnLaunch: pulumi.Bool(false), Tags: withTier(tags(sn), s.Tier),
		}, child)
		if err != nil {
			return nil, err
		}
		subnets[s.Tier] = append(subnets[s.Tier], sub)
	}

	var routeTables []pulumi.StringInput // private and isolated, for gateway endpoints
	var nats []*ec2.NatGateway
	if len(subnets[Public]) > 0 {
		igw, err := ec2.NewInternetGateway(ctx, name, &ec2.InternetGatewayArgs{VpcId: vpc.ID(), Tags: tags(name)}, child)
		if err != nil {
			return nil, err
		}
		rt, err := ec2.NewRouteTable(ctx, name+"-public", &ec2.RouteTableArgs{
			VpcId:  vpc.ID(),
			Routes: ec2.RouteTableRouteArray{&ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), GatewayId: igw.ID()}},
			Tags:   tags(name + "-public"),
		}, child)
		if err != nil {
			return nil, err
		}
		for i, sub := range subnets[Public] {
			if _, err := ec2.NewRouteTableAssociation(ctx, fmt.Sprintf("%s-public-%d", name, i), &ec2.RouteTableAssociationArgs{
				SubnetId: sub.ID(), RouteTableId: rt.ID()}, child); err != nil {
				return nil, err
			}
		}
		count := map[string]int{NATNone: 0, NATSingle: 1, NATPerAZ: len(subnets[Public])}[a.NAT]
		for i := 0; i < count; i++ {
			nn := fmt.Sprintf("%s-nat-%s", name, azs[i])
			eip, err := ec2.NewEip(ctx, nn, &ec2.EipArgs{Domain: pulumi.String("vpc"), Tags: tags(nn)}, child)
			if err != nil {
				return nil, err
			}
			nat, err := ec2.NewNatGateway(ctx, nn, &ec2.NatGatewayArgs{AllocationId: eip.ID(), SubnetId: subnets[Public][i].ID(), Tags: tags(nn)},
				child, pulumi.DependsOn([]pulumi.Resource{igw}))
			if err != nil {
				return nil, err
			}
			nats = append(nats, nat)
		}
	}
	for i, sub := range subnets[Private] {
		rn := fmt.Sprintf("%s-private-%s", name, azs[i])
		var routes ec2.RouteTableRouteArray
		if len(nats) > 0 {
			routes = append(routes, &ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), NatGatewayId: nats[i%len(nats)].ID()})
		}
		rt, err := ec2.NewRouteTable(ctx, rn, &ec2.RouteTableArgs{VpcId: vpc.ID(), Routes: routes, Tags: tags(rn)}, child)
		if err != nil {
			return nil, err
		}
		if _, err := ec2.NewRouteTableAssociation(ctx, rn, &ec2.RouteTableAssociationArgs{SubnetId: sub.ID(), RouteTableId: rt.ID()}, child); err != nil {
			return nil, err
		}
		routeTables = append(routeTables, rt.ID())
	}
	if len(subnets[Isolated]) > 0 {
		rt, err := ec2.NewRouteTable(ctx, name+"-isolated", &ec2.RouteTableArgs{VpcId: vpc.ID(), Tags: tags(name + "-isolated")}, child)
		if err != nil {
			return nil, err
		}
		for i, sub := range subnets[Isolated] {
			if _, err := ec2.NewRouteTableAssociation(ctx, fmt.Sprintf("%s-isolated-%d", name, i), &ec2.RouteTableAssociationArgs{
				SubnetId: sub.ID(), RouteTableId: rt.ID()}, child); err != nil {
				return nil, err
			}
		}
		routeTables = append(routeTables, rt.ID())
	}

	if !a.DisableGatewayEndpoints && len(routeTables) > 0 {
		region, err := aws.GetRegion(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("network: looking up the region: %w", err)
		}
		for _, svc := range []string{"s3", "dynamodb"} {
			en := name + "-" + svc
			if _, err := ec2.NewVpcEndpoint(ctx, en, &ec2.VpcEndpointArgs{
				VpcId: vpc.ID(), ServiceName: pulumi.Sprintf("com.amazonaws.%s.%s", region.Name, svc),
				VpcEndpointType: pulumi.String("Gateway"), RouteTableIds: pulumi.StringArray(routeTables), Tags: tags(en),
			}, child); err != nil {
				return nil, err
			}
		}
	}

	if !a.DisableFlowLogs {
		if err := flowLogs(ctx, name, vpc, a.FlowLogRetentionDays, tags, child); err != nil {
			return nil, err
		}
	}

	ids := func(t Tier) pulumi.StringArrayOutput {
		var arr pulumi.StringArray
		for _, s := range subnets[t] {
			arr = append(arr, s.ID().ToStringOutput())
		}
		return arr.ToStringArrayOutput()
	}
	n.VpcID = vpc.ID().ToStringOutput()
	n.PublicSubnetIDs, n.PrivateSubnetIDs, n.IsolatedSubnetIDs = ids(Public), ids(Private), ids(Isolated)
	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{
		"vpcId": n.VpcID, "publicSubnetIds": n.PublicSubnetIDs, "privateSubnetIds": n.PrivateSubnetIDs,
		"isolatedSubnetIds": n.IsolatedSubnetIDs,
	}); err != nil {
		return nil, err
	}
	return n, nil
}

func withTier(m pulumi.StringMap, t Tier) pulumi.StringMap {
	out := maps.Clone(m)
	out["slipway:tier"] = pulumi.String(string(t))
	switch t {
	case Public:
		out["kubernetes.io/role/elb"] = pulumi.String("1")
	case Private:
		out["kubernetes.io/role/internal-elb"] = pulumi.String("1")
	}
	return out
}

// flowLogs sends all VPC traffic records to a CloudWatch log group through a
// role that may write only there.
func flowLogs(ctx *pulumi.Context, name string, vpc *ec2.Vpc, retention int, tags func(string) pulumi.StringMap, child pulumi.ResourceOption) error {
	ln := name + "-flow-logs"
	group, err := cloudwatch.NewLogGroup(ctx, ln, &cloudwatch.LogGroupArgs{
		NamePrefix: pulumi.Sprintf("/slipway/vpc/%s/", name), RetentionInDays: pulumi.Int(retention), Tags: tags(ln),
	}, child)
	if err != nil {
		return err
	}
	trust, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{"Effect": "Allow", "Action": "sts:AssumeRole",
			"Principal": map[string]any{"Service": "vpc-flow-logs.amazonaws.com"}}},
	})
	role, err := iam.NewRole(ctx, ln, &iam.RoleArgs{AssumeRolePolicy: pulumi.String(string(trust)), Tags: tags(ln)}, child)
	if err != nil {
		return err
	}
	policy := group.Arn.ApplyT(func(arn string) (string, error) {
		b, err := json.Marshal(map[string]any{
			"Version": "2012-10-17",
			"Statement": []map[string]any{{"Effect": "Allow",
				"Action":   []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
				"Resource": []string{arn, arn + ":*"}}},
		})
		return string(b), err
	}).(pulumi.StringOutput)
	if _, err := iam.NewRolePolicy(ctx, ln, &iam.RolePolicyArgs{Role: role.ID(), Policy: policy}, child); err != nil {
		return err
	}
	_, err = ec2.NewFlowLog(ctx, ln, &ec2.FlowLogArgs{
		VpcId: vpc.ID(), TrafficType: pulumi.String("ALL"), LogDestinationType: pulumi.String("cloud-watch-logs"),
		LogDestination: group.Arn, IamRoleArn: role.Arn, Tags: tags(ln),
	}, child)
	return err
}

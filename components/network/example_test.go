package network_test

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

// A /20 split across two AZs into public and private subnets.
func ExamplePlan() {
	plan, err := network.Plan("10.1.0.0/20", []string{"eu-west-1a", "eu-west-1b"}, []network.Tier{network.Public, network.Private}, network.Sizes{})
	if err != nil {
		panic(err)
	}
	for _, s := range plan {
		fmt.Println(s.Tier, s.AZ, s.CIDR)
	}
	// Output:
	// public eu-west-1a 10.1.0.0/24
	// public eu-west-1b 10.1.1.0/24
	// private eu-west-1a 10.1.4.0/22
	// private eu-west-1b 10.1.8.0/22
}

// A production VPC with one NAT gateway per AZ, run here under mocks.
func ExampleNew() {
	g, _ := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := network.New(ctx, "vpc", network.Args{CIDR: "10.0.0.0/16", AZCount: 3, NAT: network.NATPerAZ,
			Tags: map[string]string{"team": "payments"}})
		return err
	}, nil)
	fmt.Println("subnets:", g.Count("aws:ec2/subnet:Subnet"))
	fmt.Println("NAT gateways:", g.Count("aws:ec2/natGateway:NatGateway"))
	fmt.Println("flow logs:", g.Count("aws:ec2/flowLog:FlowLog"))
	// Output:
	// subnets: 9
	// NAT gateways: 3
	// flow logs: 1
}

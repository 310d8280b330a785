package cluster_test

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

// An EKS cluster with a system and a spot batch node group.
func ExampleNew() {
	g, _ := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := cluster.New(ctx, "eks", cluster.Args{Name: "prod", VpcID: pulumi.String("vpc-1"),
			SubnetIDs: pulumi.ToStringArray([]string{"subnet-a", "subnet-b"}),
			NodeGroups: []cluster.NodeGroup{
				{Name: "system", InstanceTypes: []string{"m6i.large"}, MinSize: 2, DesiredSize: 2, MaxSize: 4},
				{Name: "batch", InstanceTypes: []string{"c6i.xlarge"}, MaxSize: 10, Spot: true},
			}})
		return err
	}, nil)
	fmt.Println("node groups:", g.Count("aws:eks/nodeGroup:NodeGroup"))
	fmt.Println("add-ons:", g.Count("aws:eks/addon:Addon"))
	fmt.Println("IRSA providers:", g.Count("aws:iam/openIdConnectProvider:OpenIdConnectProvider"))
	// Output:
	// node groups: 2
	// add-ons: 4
	// IRSA providers: 1
}

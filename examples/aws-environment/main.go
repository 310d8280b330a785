// Command aws-environment is a Pulumi program that composes Slipway's AWS
// components into a production environment: a three-AZ VPC, an EKS cluster
// with two node groups, an S3 bucket, and the in-cluster baseline and an
// application on the new cluster.
//
// Run it with the pulumi CLI (`pulumi up`) against an AWS account, or see
// main_test.go for the same program under mocks.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/storage"
	"github.com/slipwayhq/slipway/components/workload"
)

// Program is the environment.
func Program(ctx *pulumi.Context) error {
	tags := map[string]string{"team": "payments", "environment": "prod"}
	vpc, err := network.New(ctx, "vpc", network.Args{CIDR: "10.20.0.0/16", AZCount: 3, NAT: network.NATPerAZ, Tags: tags})
	if err != nil {
		return err
	}
	eks, err := cluster.New(ctx, "eks", cluster.Args{
		Name: "payments-prod", VpcID: vpc.VpcID, SubnetIDs: vpc.PrivateSubnetIDs, Tags: tags,
		NodeGroups: []cluster.NodeGroup{
			{Name: "system", InstanceTypes: []string{"m6i.large"}, MinSize: 3, DesiredSize: 3, MaxSize: 6},
			{Name: "apps", InstanceTypes: []string{"m6i.xlarge"}, MinSize: 3, DesiredSize: 6, MaxSize: 20},
		},
	})
	if err != nil {
		return err
	}
	bucket, err := storage.NewBucket(ctx, "ledger", storage.BucketArgs{Production: true, Tags: tags})
	if err != nil {
		return err
	}
	k8s := pulumi.Providers(eks.Provider)
	ns, err := baseline.New(ctx, "payments", baseline.Args{Namespace: "payments", AllowIngressFrom: []string{"ingress-nginx"}}, k8s)
	if err != nil {
		return err
	}
	if _, err := workload.New(ctx, "api", workload.Args{Namespace: ns.Namespace, Name: "api", Image: "ghcr.io/example/payments-api:2.4.1",
		Replicas: 3, Strategy: workload.Canary}, k8s, pulumi.DependsOn([]pulumi.Resource{ns})); err != nil {
		return err
	}
	ctx.Export("vpcId", vpc.VpcID)
	ctx.Export("kubeconfig", eks.Kubeconfig)
	ctx.Export("bucket", bucket.BucketName)
	return nil
}

func main() { pulumi.Run(Program) }

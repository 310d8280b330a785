package web

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/storage"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/stacks"
)

func networkArgs(e Environment) network.Args {
	a := e.Params.AWS
	return network.Args{CIDR: a.CIDR, AZCount: a.AZCount, NAT: a.NAT, Tags: e.Params.Tags}
}

func workloadArgs(e Environment, ns pulumi.StringInput) workload.Args {
	if ns == nil {
		ns = pulumi.String(e.Params.Namespace)
	}
	app := e.Params.App
	a := workload.Args{Namespace: ns, Name: app.Name, Image: app.Image, Replicas: app.Replicas,
		Strategy: app.Strategy, Env: map[string]string{"SLIPWAY_ENVIRONMENT": e.Name}, ReadyTimeout: app.ReadyTimeout}
	if r := app.Route; r.Gateway != "" {
		a.Canary.Route = &workload.RouteArgs{Gateway: r.Gateway, GatewayNamespace: r.GatewayNamespace, Hostnames: r.Hostnames}
	}
	return a
}

// canaryStep is a canary at a weight beside a stable image.
type canaryStep struct {
	stableImage string
	weight      int
}

// at returns a with its canary at the step (a unchanged when step is nil).
func (step *canaryStep) at(a workload.Args) workload.Args {
	if step == nil {
		return a
	}
	a.Canary.StableImage = step.stableImage
	return a.CanaryAt(step.weight)
}

// run is the web program; e has been defaulted and checked.
func run(ctx *pulumi.Context, e Environment) error { return runAt(ctx, e, nil) }

// runAt is the web program, with the application's canary at step
// when step is set (a rollout's weight step).
func runAt(ctx *pulumi.Context, e Environment, step *canaryStep) error {
	p := e.Params
	var prov *kubernetes.Provider
	switch p.Target {
	case AWS:
		net, err := network.New(ctx, "network", networkArgs(e))
		if err != nil {
			return err
		}
		eks, err := cluster.New(ctx, "cluster", cluster.Args{Name: "slipway-" + e.ID(), Version: p.AWS.KubernetesVersion,
			VpcID: net.VpcID, SubnetIDs: net.PrivateSubnetIDs, PublicAccessCIDRs: p.AWS.PublicAccessCIDRs,
			NodeGroups: p.AWS.NodeGroups, Tags: p.Tags})
		if err != nil {
			return err
		}
		bucket, err := storage.NewBucket(ctx, "data", storage.BucketArgs{Production: e.Kind == stacks.Prod, Tags: p.Tags})
		if err != nil {
			return err
		}
		prov = eks.Provider
		ctx.Export("vpcId", net.VpcID)
		ctx.Export("clusterName", eks.ClusterName)
		ctx.Export("kubeconfig", eks.Kubeconfig)
		ctx.Export("bucket", bucket.BucketName)
	default:
		var err error
		if prov, err = e.KubernetesProvider(ctx, "k8s"); err != nil {
			return err
		}
	}
	k8s := pulumi.Providers(prov)
	base, err := baseline.New(ctx, "baseline", baseline.Args{Namespace: p.Namespace,
		Labels: map[string]string{"slipway.dev/environment": e.Name, "slipway.dev/kind": string(e.Kind)}}, k8s)
	if err != nil {
		return err
	}
	labels := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(p.App.Name), "app.kubernetes.io/managed-by": pulumi.String("slipway")}
	cm, err := corev1.NewConfigMap(ctx, "config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(p.App.Name + "-config"), Namespace: base.Namespace, Labels: labels},
		Data:     pulumi.ToStringMap(p.App.Settings),
	}, pulumi.Provider(prov), pulumi.DependsOn([]pulumi.Resource{base}))
	if err != nil {
		return err
	}
	wa := step.at(workloadArgs(e, base.Namespace))
	wa.EnvFromConfigMap = cm.Metadata.Name().Elem()
	secret, err := stacks.NewSecret(ctx, "secrets", p.App.Name+"-secrets", base.Namespace, labels, pulumi.Provider(prov), pulumi.DependsOn([]pulumi.Resource{base}))
	if err != nil {
		return err
	}
	if secret != nil {
		wa.EnvFromSecret = secret.Metadata.Name().Elem()
	}
	app, err := workload.New(ctx, "app", wa, k8s, pulumi.DependsOn([]pulumi.Resource{base}))
	if err != nil {
		return err
	}
	ctx.Export("namespace", base.Namespace)
	ctx.Export("configMap", cm.Metadata.Name())
	ctx.Export("service", app.Service)
	ctx.Export("deployment", app.ActiveSlot)
	return nil
}

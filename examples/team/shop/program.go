package shop

import (
	"maps"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/stacks"
)

// baselineArgs are the namespace's baseline: quota, the shop's resources
// as the namespace's container defaults, and labels naming the environment.
func baselineArgs(e Env) baseline.Args {
	r := e.Params.Resources
	return baseline.Args{
		Namespace: e.Params.Namespace,
		Quota:     e.Params.Quota,
		Limits: baseline.Limits{DefaultRequestCPU: r.CPURequest, DefaultCPU: r.CPULimit,
			DefaultRequestMemory: r.MemoryRequest, DefaultMemory: r.MemoryLimit},
		Labels: map[string]string{"shop.acme.dev/environment": e.Name, "shop.acme.dev/kind": string(e.Kind)},
	}
}

// workloadArgs are the shop application's; ns is the namespace output
// (nil: the parameter, for validation).
func workloadArgs(e Env, ns pulumi.StringInput) workload.Args {
	if ns == nil {
		ns = pulumi.String(e.Params.Namespace)
	}
	p := e.Params
	return workload.Args{
		Namespace: ns, Name: AppName, Image: p.Image, Replicas: p.Replicas,
		MaxReplicas: p.MaxReplicas, DisableHPA: p.MaxReplicas == 0,
		CPURequest: p.Resources.CPURequest, CPULimit: p.Resources.CPULimit,
		MemoryRequest: p.Resources.MemoryRequest, MemoryLimit: p.Resources.MemoryLimit,
		Env: map[string]string{"SHOP_ENVIRONMENT": e.Name},
	}
}

// settings are the ConfigMap's data: the extra settings, then the ones
// the parameters set.
func settings(e Env) map[string]string {
	out := maps.Clone(e.Params.Settings)
	if out == nil {
		out = map[string]string{}
	}
	out["LOG_LEVEL"] = e.Params.LogLevel
	out["QUEUE_DEPTH"] = strconv.Itoa(e.Params.QueueDepth)
	out["SHOP_ENVIRONMENT"] = e.Name
	return out
}

// run is the shop's program; e has its defaults and has been checked.
func run(ctx *pulumi.Context, e Env) error {
	// The environment's provider: its kubeconfig, or YAML files when it renders.
	prov, err := e.KubernetesProvider(ctx, "k8s")
	if err != nil {
		return err
	}
	k8s := pulumi.Providers(prov)
	base, err := baseline.New(ctx, "baseline", baselineArgs(e), k8s)
	if err != nil {
		return err
	}
	inNS := []pulumi.ResourceOption{pulumi.Provider(prov), pulumi.DependsOn([]pulumi.Resource{base})}
	labels := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(AppName), "app.kubernetes.io/managed-by": pulumi.String("slipway")}
	cm, err := corev1.NewConfigMap(ctx, "config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(AppName + "-config"), Namespace: base.Namespace, Labels: labels},
		Data:     pulumi.ToStringMap(settings(e)),
	}, inNS...)
	if err != nil {
		return err
	}
	wa := workloadArgs(e, base.Namespace)
	wa.EnvFromConfigMap = cm.Metadata.Name().Elem()

	// Secrets (--secret KEY=VALUE) arrive as one encrypted configuration
	// value; they stay secret into the Secret's data.
	secret, err := stacks.NewSecret(ctx, "secrets", AppName+"-secrets", base.Namespace, labels, inNS...)
	if err != nil {
		return err
	}
	if secret != nil {
		wa.EnvFromSecret = secret.Metadata.Name().Elem()
	}
	app, err := workload.New(ctx, "shop", wa, k8s, pulumi.DependsOn([]pulumi.Resource{base}))
	if err != nil {
		return err
	}
	ctx.Export("namespace", base.Namespace)
	ctx.Export("configMap", cm.Metadata.Name().Elem())
	ctx.Export("service", app.Service)
	ctx.Export("deployment", app.ActiveSlot)
	ctx.Export("replicas", pulumi.Int(e.Params.Replicas))
	ctx.Export("image", pulumi.String(e.Params.Image))
	return nil
}

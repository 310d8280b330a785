// Package minimal is a team's own environment: a namespace with Slipway's
// baseline and a greeting in a ConfigMap, typed parameters per kind.
package minimal

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/stacks"
)

// Params are an environment's parameters; zero fields get the kind's defaults.
type Params struct {
	Greeting string // the ConfigMap "hello"'s greeting
	Pods     int    // the namespace's pod quota
}

// Definition is the environment: cli.Definitions(minimal.Definition) gives it every verb.
var Definition = &stacks.Definition[Params]{
	Name: "minimal", Project: "minimal", Description: "a namespace with a baseline and a greeting",
	Defaults: map[stacks.Kind]Params{stacks.Dev: {"hi", 5}, stacks.Prod: {"hello", 20}},
	Plugins:  func(stacks.Env[Params]) []automation.Plugin { return []automation.Plugin{automation.KubernetesPlugin} },
	Flags:    []stacks.Flag{{Name: "greeting", Path: "Greeting", Usage: "the greeting"}},
	Run: func(ctx *pulumi.Context, e stacks.Env[Params]) error {
		k8s, err := e.KubernetesProvider(ctx, "k8s")
		if err != nil {
			return err
		}
		ns, err := baseline.New(ctx, "base", baseline.Args{Namespace: "minimal-" + e.ID(),
			Quota: baseline.Quota{Pods: e.Params.Pods}}, pulumi.Providers(k8s))
		if err != nil {
			return err
		}
		_, err = corev1.NewConfigMap(ctx, "hello", &corev1.ConfigMapArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("hello"), Namespace: ns.Namespace},
			Data:     pulumi.StringMap{"greeting": pulumi.String(e.Params.Greeting)},
		}, pulumi.Provider(k8s), pulumi.DependsOn([]pulumi.Resource{ns}))
		ctx.Export("namespace", ns.Namespace)
		return err
	},
}

package stacks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/storage"
	"github.com/slipwayhq/slipway/components/workload"
)

// forceApply makes Slipway's desired state win over out-of-band edits:
// server-side apply would otherwise report a field conflict when drift is
// repaired.
const forceApply = "pulumi.com/patchForce"

func (e Environment) networkArgs() network.Args {
	return network.Args{CIDR: e.AWS.CIDR, AZCount: e.AWS.AZCount, NAT: e.AWS.NAT, Tags: e.Tags}
}

func (e Environment) workloadArgs(ns pulumi.StringInput) workload.Args {
	if ns == nil {
		ns = pulumi.String(e.Namespace)
	}
	return workload.Args{Namespace: ns, Name: e.App.Name, Image: e.App.Image, Replicas: e.App.Replicas,
		Strategy: e.App.Strategy, Env: map[string]string{"SLIPWAY_ENVIRONMENT": e.Name}, ReadyTimeout: e.App.ReadyTimeout}
}

// run is the one Slipway program; e has been validated and defaulted.
func (e Environment) run(ctx *pulumi.Context) error {
	// Every Kubernetes object Slipway owns is force-applied (see forceApply).
	if err := ctx.RegisterResourceTransform(func(_ context.Context, rta *pulumi.ResourceTransformArgs) *pulumi.ResourceTransformResult {
		if !rta.Custom || !strings.HasPrefix(rta.Type, "kubernetes:") {
			return nil
		}
		return &pulumi.ResourceTransformResult{Props: withAnnotation(rta.Props, forceApply, "true"), Opts: rta.Opts}
	}); err != nil {
		return err
	}
	var prov *kubernetes.Provider
	switch e.Target {
	case AWS:
		net, err := network.New(ctx, "network", e.networkArgs())
		if err != nil {
			return err
		}
		eks, err := cluster.New(ctx, "cluster", cluster.Args{Name: "slipway-" + e.Name, Version: e.AWS.KubernetesVersion,
			VpcID: net.VpcID, SubnetIDs: net.PrivateSubnetIDs, PublicAccessCIDRs: e.AWS.PublicAccessCIDRs,
			NodeGroups: e.AWS.NodeGroups, Tags: e.Tags})
		if err != nil {
			return err
		}
		bucket, err := storage.NewBucket(ctx, "data", storage.BucketArgs{Production: e.Kind == Prod, Tags: e.Tags})
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
		args := &kubernetes.ProviderArgs{
			Kubeconfig:        pulumi.String(e.Kubeconfig),
			DeleteUnreachable: pulumi.Bool(false),
			// Edit ConfigMaps in place, so a drifted value is repaired by an
			// update rather than a replacement of the ConfigMap and its users.
			EnableConfigMapMutable: pulumi.Bool(true),
		}
		if e.RenderDir != "" {
			args = &kubernetes.ProviderArgs{RenderYamlToDirectory: pulumi.String(e.RenderDir), EnableConfigMapMutable: pulumi.Bool(true)}
		}
		prov, err = kubernetes.NewProvider(ctx, "k8s", args)
		if err != nil {
			return err
		}
	}
	k8s := pulumi.Providers(prov)
	base, err := baseline.New(ctx, "baseline", baseline.Args{Namespace: e.Namespace,
		Labels: map[string]string{"slipway.dev/environment": e.Name, "slipway.dev/kind": string(e.Kind)}}, k8s)
	if err != nil {
		return err
	}
	data := pulumi.StringMap{}
	for k, v := range e.App.Settings {
		data[k] = pulumi.String(v)
	}
	cm, err := corev1.NewConfigMap(ctx, "config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(e.App.Name + "-config"), Namespace: base.Namespace,
			Labels: pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(e.App.Name), "app.kubernetes.io/managed-by": pulumi.String("slipway")}},
		Data: data,
	}, pulumi.Provider(prov), pulumi.DependsOn([]pulumi.Resource{base}))
	if err != nil {
		return err
	}
	wa := e.workloadArgs(base.Namespace)
	wa.EnvFromConfigMap = cm.Metadata.Name().Elem()
	secret, err := e.secret(ctx, base, prov)
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

// secret registers the application's Secret from the stack's secret
// configuration (SecretsConfigKey), or returns nil when the stack has none.
// The values stay secret from the configuration to the Secret's data, so
// the state holds them encrypted and no output shows them.
func (e Environment) secret(ctx *pulumi.Context, base *baseline.Baseline, prov *kubernetes.Provider) (*corev1.Secret, error) {
	raw, ok := ctx.GetConfig(SecretsConfigKey)
	if !ok {
		return nil, nil
	}
	if !ctx.IsConfigSecret(SecretsConfigKey) {
		return nil, fmt.Errorf("stacks: stack configuration %s is not secret; set it with --secret (or pulumi config set --secret)", SecretsConfigKey)
	}
	if e.RenderDir != "" {
		return nil, fmt.Errorf("stacks: stack %s has secrets (%s), which rendering (RenderDir) would write in plain text; remove them from its configuration",
			ctx.Stack(), SecretsConfigKey)
	}
	var values map[string]string
	if err := json.Unmarshal([]byte(raw), &values); err != nil {
		// The error text would quote the value; name the key only.
		return nil, fmt.Errorf("stacks: stack configuration %s is not a JSON object of strings; set it again with --secret KEY=VALUE", SecretsConfigKey)
	}
	// Data (base64), not stringData: the API server keeps only data, so the
	// live object matches the inputs and a refresh finds no drift.
	encoded := make(map[string]string, len(values))
	for k, v := range values {
		encoded[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	data := pulumi.ToSecret(pulumi.ToStringMap(encoded)).(pulumi.StringMapOutput)
	return corev1.NewSecret(ctx, "secrets", &corev1.SecretArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(e.App.Name + "-secrets"), Namespace: base.Namespace,
			Labels: pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(e.App.Name), "app.kubernetes.io/managed-by": pulumi.String("slipway")}},
		Type: pulumi.String("Opaque"),
		Data: data,
	}, pulumi.Provider(prov), pulumi.DependsOn([]pulumi.Resource{base}), pulumi.AdditionalSecretOutputs([]string{"data", "stringData"}))
}

// withAnnotation returns props with metadata.annotations[key] = value, or
// props unchanged when its metadata is not a plain object.
func withAnnotation(props pulumi.Map, key, value string) pulumi.Map {
	meta, ok := props["metadata"].(pulumi.Map)
	if props["metadata"] != nil && !ok {
		return props
	}
	ann, ok := meta["annotations"].(pulumi.Map)
	if meta["annotations"] != nil && !ok {
		return props
	}
	newAnn := pulumi.Map{key: pulumi.String(value)}
	for k, v := range ann {
		if k != key {
			newAnn[k] = v
		}
	}
	newMeta := pulumi.Map{"annotations": newAnn}
	for k, v := range meta {
		if k != "annotations" {
			newMeta[k] = v
		}
	}
	out := pulumi.Map{"metadata": newMeta}
	for k, v := range props {
		if k != "metadata" {
			out[k] = v
		}
	}
	return out
}

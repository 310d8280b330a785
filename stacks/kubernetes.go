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
)

// patchForce makes Slipway's desired state win over out-of-band edits:
// server-side apply would otherwise report a field conflict when drift is
// repaired.
const patchForce = "pulumi.com/patchForce"

// patchFieldManager names the server-side apply field manager. The provider
// would otherwise draw a random one per resource and keep it in the state;
// a create interrupted before its state was written is re-applied by the
// next run under a new name, and fields only the lost manager owned (a
// setting the new parameters drop) would stay on the object. One fixed
// name makes the re-apply own, and remove, them.
const patchFieldManager = "pulumi.com/patchFieldManager"

// FieldManager is the server-side apply field manager of every Kubernetes
// object a definition's program registers.
const FieldManager = "slipway"

// ForceApply makes a program written without a Definition apply
// Kubernetes objects as a definition's programs do: every Kubernetes
// object it registers from then on is force-applied under FieldManager,
// so a drift repair wins over an out-of-band edit instead of failing with
// a server-side apply field conflict. Call it first in the program.
func ForceApply(ctx *pulumi.Context) error { return forceApply(ctx) }

// forceApply annotates every Kubernetes object the program registers from
// now on with patchForce and patchFieldManager.
func forceApply(ctx *pulumi.Context) error {
	return ctx.RegisterResourceTransform(func(_ context.Context, rta *pulumi.ResourceTransformArgs) *pulumi.ResourceTransformResult {
		if !rta.Custom || !strings.HasPrefix(rta.Type, "kubernetes:") {
			return nil
		}
		props := withAnnotation(withAnnotation(rta.Props, patchForce, "true"), patchFieldManager, FieldManager)
		return &pulumi.ResourceTransformResult{Props: props, Opts: rta.Opts}
	})
}

// KubernetesProvider registers the Kubernetes provider of the environment:
// it targets e.Kubeconfig or, when e.RenderDir is set, renders YAML files
// to that directory instead of applying them. Objects the environment no
// longer reaches are not silently forgotten (DeleteUnreachable false), and
// ConfigMaps are edited in place, so a drifted value is repaired by an
// update rather than a replacement of the ConfigMap and its users. A
// definition whose programs use it lists automation.KubernetesPlugin in
// its Plugins.
func (e Env[P]) KubernetesProvider(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*kubernetes.Provider, error) {
	args := &kubernetes.ProviderArgs{
		Kubeconfig:             pulumi.String(e.Kubeconfig),
		DeleteUnreachable:      pulumi.Bool(false),
		EnableConfigMapMutable: pulumi.Bool(true),
	}
	switch {
	case e.RenderDir != "":
		args = &kubernetes.ProviderArgs{RenderYamlToDirectory: pulumi.String(e.RenderDir), EnableConfigMapMutable: pulumi.Bool(true)}
	case e.Kubeconfig == "":
		// Never fall back to the ambient kubeconfig: it may be any cluster.
		return nil, fmt.Errorf("stacks: environment %s: Env.Kubeconfig is empty; set the path of the target cluster's kubeconfig (or RenderDir to render YAML)", e.Name)
	}
	return kubernetes.NewProvider(ctx, name, args, opts...)
}

// Secrets returns the environment's secrets (Env.Secrets, as the stack's
// configuration holds them under SecretsConfigKey) as a secret output,
// and false when the stack has none. The values stay secret from the
// configuration to whatever resource takes them, so the state holds them
// encrypted and no output shows them. A configuration value that is not
// stored as a secret, or is not a JSON object of strings, is refused,
// naming the key and never the value.
func Secrets(ctx *pulumi.Context) (pulumi.StringMapOutput, bool, error) {
	raw, ok := ctx.GetConfig(SecretsConfigKey)
	if !ok {
		return pulumi.StringMapOutput{}, false, nil
	}
	if !ctx.IsConfigSecret(SecretsConfigKey) {
		return pulumi.StringMapOutput{}, false, fmt.Errorf("stacks: stack configuration %s is not secret; set it with --secret (or pulumi config set --secret)", SecretsConfigKey)
	}
	var values map[string]string
	if err := json.Unmarshal([]byte(raw), &values); err != nil {
		// The error text would quote the value; name the key only.
		return pulumi.StringMapOutput{}, false, fmt.Errorf("stacks: stack configuration %s is not a JSON object of strings; set it again with --secret KEY=VALUE", SecretsConfigKey)
	}
	return pulumi.ToSecret(pulumi.ToStringMap(values)).(pulumi.StringMapOutput), true, nil
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

// NewSecret registers the environment's secrets (Secrets) as one
// Kubernetes Secret named name in namespace, and returns nil when the
// stack has none. The values stay secret from the configuration into the
// Secret's data (base64 data, not stringData: the API server keeps only
// data, so the live object matches the inputs and a refresh finds no
// drift), and the state keeps them encrypted.
func NewSecret(ctx *pulumi.Context, resource, name string, namespace pulumi.StringInput, labels pulumi.StringMap, opts ...pulumi.ResourceOption) (*corev1.Secret, error) {
	secrets, ok, err := Secrets(ctx)
	if err != nil || !ok {
		return nil, err
	}
	data := secrets.ApplyT(func(values map[string]string) map[string]string {
		encoded := make(map[string]string, len(values))
		for k, v := range values {
			encoded[k] = base64.StdEncoding.EncodeToString([]byte(v))
		}
		return encoded
	}).(pulumi.StringMapOutput)
	return corev1.NewSecret(ctx, resource, &corev1.SecretArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: namespace, Labels: labels},
		Type:     pulumi.String("Opaque"),
		Data:     data,
	}, append(opts, pulumi.AdditionalSecretOutputs([]string{"data", "stringData"}))...)
}

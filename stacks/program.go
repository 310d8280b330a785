package stacks

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// run is the one Slipway program; e has been validated and defaulted.
func (e Environment) run(ctx *pulumi.Context) error {
	prov, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{
		Kubeconfig:        pulumi.String(e.Kubeconfig),
		DeleteUnreachable: pulumi.Bool(false),
		// Edit ConfigMaps in place, so a drifted value is repaired by an
		// update rather than a replacement of the ConfigMap and its users.
		EnableConfigMapMutable: pulumi.Bool(true),
	})
	if err != nil {
		return err
	}
	opts := []pulumi.ResourceOption{pulumi.Provider(prov)}
	labels := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(e.App.Name),
		"app.kubernetes.io/managed-by": pulumi.String("slipway"), "slipway.dev/environment": pulumi.String(e.Name)}

	// Slipway's desired state wins over out-of-band edits (server-side apply
	// would otherwise report a field conflict when drift is repaired).
	force := pulumi.StringMap{"pulumi.com/patchForce": pulumi.String("true")}
	ns, err := corev1.NewNamespace(ctx, "namespace", &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(e.Namespace), Annotations: force, Labels: pulumi.StringMap{
			"slipway.dev/environment": pulumi.String(e.Name), "slipway.dev/kind": pulumi.String(string(e.Kind))}},
	}, opts...)
	if err != nil {
		return err
	}
	nsOpts := append(opts, pulumi.DependsOn([]pulumi.Resource{ns}))
	data := pulumi.StringMap{}
	for k, v := range e.App.Settings {
		data[k] = pulumi.String(v)
	}
	cm, err := corev1.NewConfigMap(ctx, "config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(e.App.Name + "-config"), Namespace: ns.Metadata.Name().Elem(), Labels: labels, Annotations: force},
		Data:     data,
	}, nsOpts...)
	if err != nil {
		return err
	}
	selector := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(e.App.Name)}
	dep, err := appsv1.NewDeployment(ctx, "app", &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(e.App.Name), Namespace: ns.Metadata.Name().Elem(), Labels: labels, Annotations: force},
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(e.App.Replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{
					Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name:  pulumi.String(e.App.Name),
						Image: pulumi.String(e.App.Image),
						EnvFrom: corev1.EnvFromSourceArray{&corev1.EnvFromSourceArgs{
							ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: cm.Metadata.Name()}}},
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")},
							Limits:   pulumi.StringMap{"cpu": pulumi.String("250m"), "memory": pulumi.String("128Mi")},
						},
					}},
				},
			},
		},
	}, nsOpts...)
	if err != nil {
		return err
	}
	ctx.Export("namespace", ns.Metadata.Name())
	ctx.Export("configMap", cm.Metadata.Name())
	ctx.Export("deployment", dep.Metadata.Name())
	ctx.Export("readyReplicas", dep.Status.ReadyReplicas())
	return nil
}

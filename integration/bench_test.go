package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// benchProgram is a namespace, 10 ConfigMaps and a Deployment.
func benchProgram(ns string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		prov, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{Kubeconfig: pulumi.String(cluster.Kubeconfig)})
		if err != nil {
			return err
		}
		opt := pulumi.Provider(prov)
		n, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ns)}}, opt)
		if err != nil {
			return err
		}
		for i := 0; i < 10; i++ {
			if _, err := corev1.NewConfigMap(ctx, fmt.Sprintf("cm-%d", i), &corev1.ConfigMapArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.Sprintf("cm-%d", i), Namespace: n.Metadata.Name().Elem()},
				Data:     pulumi.StringMap{"k": pulumi.String("v")}}, opt); err != nil {
				return err
			}
		}
		labels := pulumi.StringMap{"app": pulumi.String("b")}
		_, err = appsv1.NewDeployment(ctx, "d", &appsv1.DeploymentArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("d"), Namespace: n.Metadata.Name().Elem()},
			Spec: &appsv1.DeploymentSpecArgs{Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
				Template: &corev1.PodTemplateSpecArgs{Metadata: &metav1.ObjectMetaArgs{Labels: labels},
					Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{Name: pulumi.String("c"), Image: pulumi.String("nginx:1.27")}}}}},
		}, opt)
		return err
	}
}

// bareStack opens the same program with the bare Automation API: same CLI,
// same file backend layout, same plugins.
func bareStack(b *testing.B, name, ns string) auto.Stack {
	b.Helper()
	ctx := context.Background()
	root, err := toolchain.New().PulumiCLI(ctx)
	if err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	if _, err := toolchain.New().KubernetesProvider(ctx, home); err != nil {
		b.Fatal(err)
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, Version: semver.MustParse(toolchain.PulumiVersion)})
	if err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(b.TempDir(), "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		b.Fatal(err)
	}
	st, err := auto.UpsertStackInlineSource(ctx, name, "bench", benchProgram(ns), auto.WorkDir(b.TempDir()), auto.Pulumi(cmd),
		auto.PulumiHome(home), auto.EnvVars(map[string]string{"PULUMI_BACKEND_URL": "file://" + state, "PULUMI_CONFIG_PASSPHRASE": "",
			"PULUMI_SKIP_UPDATE_CHECK": "true"}))
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func slipwayStack(b *testing.B, name, ns string) *automation.Stack {
	b.Helper()
	ctx := context.Background()
	e, err := automation.New(ctx, automation.WithDir(b.TempDir()), automation.WithPulumiHome(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	st, err := e.UpsertStack(ctx, automation.Program{Project: "bench", Stack: name, Run: benchProgram(ns), Plugins: []automation.Plugin{automation.KubernetesPlugin}})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkUp compares Slipway's Up with the bare Automation API's on the
// same program (namespace + 10 ConfigMaps + Deployment), from empty each
// time (the destroy in between is not timed). Report the ratio of the two.
func BenchmarkUp(b *testing.B) {
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		st := bareStack(b, "bare", "bench-bare")
		for i := 0; i < b.N; i++ {
			if _, err := st.Up(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := st.Destroy(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("slipway", func(b *testing.B) {
		st := slipwayStack(b, "slipway", "bench-slipway")
		for i := 0; i < b.N; i++ {
			if _, err := st.Up(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := st.Destroy(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkNoopPreview compares a preview with nothing to change.
func BenchmarkNoopPreview(b *testing.B) {
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		st := bareStack(b, "bare-noop", "bench-bare-noop")
		if _, err := st.Up(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _, _ = st.Destroy(ctx) })
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := st.Preview(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slipway", func(b *testing.B) {
		st := slipwayStack(b, "slipway-noop", "bench-slipway-noop")
		if _, err := st.Up(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _, _ = st.Destroy(ctx) })
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := st.Preview(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFourEnvironments compares four environments brought up one after
// another with the same four in parallel (destroys not timed).
func BenchmarkFourEnvironments(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, limit int) {
		e, err := automation.New(ctx, automation.WithDir(b.TempDir()), automation.WithPulumiHome(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		var progs []automation.Program
		for i := 0; i < 4; i++ {
			p, err := web.Definition.Program(web.Environment{Name: fmt.Sprintf("b%d-%d", limit, i), Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig})
			if err != nil {
				b.Fatal(err)
			}
			progs = append(progs, p)
		}
		for i := 0; i < b.N; i++ {
			for _, r := range e.Each(ctx, progs, automation.Up(), limit) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.StopTimer()
			for _, r := range e.Each(ctx, progs, automation.Destroy(), 4) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.StartTimer()
		}
	}
	b.Run("sequential", func(b *testing.B) { run(b, 1) })
	b.Run("parallel", func(b *testing.B) { run(b, 4) })
}

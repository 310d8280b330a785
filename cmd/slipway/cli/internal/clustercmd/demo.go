package clustercmd

import (
	"fmt"
	"path/filepath"
	"time"

	k8s "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	pmeta "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// newDemoCmd is the demo verb: toolchain, local cluster, the dev environment, drift detection, teardown.
func newDemoCmd(g *app.Globals) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Bootstrap the toolchain and a local cluster, bring up the dev environment, show drift detection, tear down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			step := func(format string, args ...any) { fmt.Fprintf(g.Out, "\n==> "+format+"\n", args...) }
			start := time.Now()
			step("toolchain: pulumi CLI, Kubernetes provider, control plane (built once from Go modules)")
			r := g.Resolver()
			// Every tool the demo needs, built at the same time on first use.
			if err := r.All(ctx, ""); err != nil {
				return err
			}
			step("starting a local Kubernetes control plane")
			c, err := localk8s.StartCluster(ctx, localk8s.WithResolver(r), localk8s.WithStateDir(filepath.Join(g.Dir, "demo-cluster")))
			if err != nil {
				return err
			}
			defer func() {
				step("stopping the local cluster")
				_ = c.Stop()
				fmt.Fprintf(g.Out, "\ndemo finished in %s\n", time.Since(start).Round(time.Second))
			}()
			e, err := automation.New(ctx, automation.WithDir(filepath.Join(g.Dir, "demo")), automation.WithResolver(r))
			if err != nil {
				return err
			}
			env := web.Environment{Name: "dev", Kind: stacks.Dev, Kubeconfig: c.Kubeconfig,
				Params: web.Params{App: web.App{Settings: map[string]string{"GREETING": "hello from slipway"}}}}
			prog, err := web.Definition.Program(env)
			if err != nil {
				return err
			}
			st, err := e.UpsertStack(ctx, prog)
			if err != nil {
				return err
			}
			step("preview of dev")
			res, err := st.Preview(ctx)
			g.PrintResult(res)
			if err != nil {
				return err
			}
			step("up of dev")
			res, err = st.Up(ctx, optup.OnEvent(g.Progress()))
			g.PrintResult(res)
			if err != nil {
				return err
			}
			if !keep {
				defer func() {
					step("destroying dev")
					res, err := st.Destroy(ctx, optdestroy.RemoveStack())
					g.PrintResult(res)
					if err != nil {
						fmt.Fprintln(g.Errw, g.Config.Name+":", err)
					}
				}()
			}
			step("drift: editing ConfigMap %s/web-config behind the engine's back", web.Definition.WithDefaults(env).Params.Namespace)
			ns := web.Definition.WithDefaults(env).Params.Namespace
			cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Data["GREETING"] = "edited by hand"
			if _, err := c.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				return err
			}
			step("refresh detects the drift")
			res, err = st.Refresh(ctx)
			g.PrintResult(res)
			if err != nil {
				return err
			}
			for _, ch := range res.Changed() {
				for _, p := range ch.Properties {
					fmt.Fprintf(g.Out, "  drift: %s %s: expected %v, live %v\n", ch.Type, p.Path, p.Expected, p.Actual)
				}
			}
			step("up restores the desired state")
			res, err = st.Up(ctx)
			g.PrintResult(res)
			if err != nil {
				return err
			}
			cm, err = c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Out, "  live GREETING is %q again\n", cm.Data["GREETING"])

			step("policy: the Kubernetes pack, enforced as in prod, blocks an unsafe workload before anything is applied")
			dir, err := e.PolicyDir("prod", policypacks.Settings{Kind: "prod"}, kubernetes.Pack())
			if err != nil {
				return err
			}
			unsafe, err := e.UpsertStack(ctx, automation.Program{Project: "slipway-demo", Stack: "unsafe", Run: unsafeProgram(c.Kubeconfig),
				Plugins: []automation.Plugin{automation.KubernetesPlugin}})
			if err != nil {
				return err
			}
			res, err = unsafe.Up(ctx, optup.Policies(dir))
			if !automation.IsPolicyBlocked(err) {
				return fmt.Errorf("the unsafe workload was not blocked: %v", err)
			}
			g.PrintResult(res)
			if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "demo-unsafe", metav1.GetOptions{}); err == nil {
				return fmt.Errorf("namespace demo-unsafe exists although the up was blocked")
			}
			fmt.Fprintln(g.Out, "  blocked: namespace demo-unsafe was never created")
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the dev environment (the cluster still stops)")
	return cmd
}

// unsafeProgram deploys a privileged container with an unpinned image.
func unsafeProgram(kubeconfig string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		prov, err := k8s.NewProvider(ctx, "k8s", &k8s.ProviderArgs{Kubeconfig: pulumi.String(kubeconfig)})
		if err != nil {
			return err
		}
		ns, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &pmeta.ObjectMetaArgs{Name: pulumi.String("demo-unsafe")}},
			pulumi.Provider(prov))
		if err != nil {
			return err
		}
		labels := pulumi.StringMap{"app": pulumi.String("unsafe")}
		_, err = appsv1.NewDeployment(ctx, "unsafe", &appsv1.DeploymentArgs{
			Metadata: &pmeta.ObjectMetaArgs{Namespace: ns.Metadata.Name().Elem()},
			Spec: &appsv1.DeploymentSpecArgs{
				Selector: &pmeta.LabelSelectorArgs{MatchLabels: labels},
				Template: &corev1.PodTemplateSpecArgs{Metadata: &pmeta.ObjectMetaArgs{Labels: labels}, Spec: &corev1.PodSpecArgs{
					Containers: corev1.ContainerArray{&corev1.ContainerArgs{Name: pulumi.String("app"), Image: pulumi.String("nginx:latest"),
						SecurityContext: &corev1.SecurityContextArgs{Privileged: pulumi.Bool(true)}}}}},
			},
		}, pulumi.Provider(prov))
		return err
	}
}

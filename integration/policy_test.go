package integration

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kmeta "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/policypacks"
	k8spack "github.com/slipwayhq/slipway/policypacks/kubernetes"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// badProgram deploys a privileged, unpinned, unbounded workload into its own namespace.
func badProgram(kubeconfig, ns string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		var opts []pulumi.ResourceOption
		if kubeconfig != "" {
			prov, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{Kubeconfig: pulumi.String(kubeconfig)})
			if err != nil {
				return err
			}
			opts = append(opts, pulumi.Provider(prov))
		}
		n, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ns)}}, opts...)
		if err != nil {
			return err
		}
		labels := pulumi.StringMap{"app": pulumi.String("bad")}
		_, err = appsv1.NewDeployment(ctx, "bad", &appsv1.DeploymentArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("bad"), Namespace: n.Metadata.Name().Elem()},
			Spec: &appsv1.DeploymentSpecArgs{
				Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
				Template: &corev1.PodTemplateSpecArgs{
					Metadata: &metav1.ObjectMetaArgs{Labels: labels},
					Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name: pulumi.String("app"), Image: pulumi.String("nginx:latest"),
						SecurityContext: &corev1.SecurityContextArgs{Privileged: pulumi.Bool(true)},
					}}},
				},
			},
		}, opts...)
		return err
	}
}

type finding struct{ policy, resource string }

func urnName(urn string) string { return urn[strings.LastIndex(urn, "::")+2:] }

func TestPolicy_InEngineBlocksMandatoryAndMatchesInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := newEngine(t)
	k := cluster.Client
	const ns = "policy-bad"
	st, err := e.UpsertStack(ctx, automation.Program{Project: "policy", Stack: "bad", Run: badProgram(cluster.Kubeconfig, ns), Plugins: []automation.Plugin{automation.KubernetesPlugin}})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = st.Destroy(context.Background(), optdestroy.RemoveStack()) })

	settings := policypacks.Settings{Kind: "prod"}
	prod, err := e.PolicyDir("prod", settings, k8spack.Pack())
	require.NoError(t, err)

	// Mandatory (prod): preview and up are blocked and nothing is created.
	pre, err := st.Preview(ctx, optpreview.Policies(prod))
	require.Error(t, err)
	assert.True(t, automation.IsPolicyBlocked(err), "%v", err)
	engine := map[finding]bool{}
	require.NotEmpty(t, pre.Policy)
	for _, f := range pre.Policy {
		if !policypacks.IsUnverified(f.Policy) {
			engine[finding{f.Policy, urnName(f.URN)}] = true
		}
	}
	assert.True(t, engine[finding{"no-privileged", "bad"}], "%v", pre.Policy)
	assert.True(t, engine[finding{"image-pinned", "bad"}], "%v", pre.Policy)

	up, err := st.Up(ctx, optup.Policies(prod))
	require.Error(t, err)
	assert.True(t, automation.IsPolicyBlocked(err))
	assert.Contains(t, err.Error(), "nothing was applied")
	assert.NotEmpty(t, up.Policy)
	_, err = k.CoreV1().Namespaces().Get(ctx, ns, kmeta.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a blocked up creates nothing: %v", err)

	// The same policy code, in-process over the program's mocked graph, finds the same violations.
	g, err := mocktest.Run(badProgram("", ns), nil)
	require.NoError(t, err)
	rep := policypacks.Evaluate(g.PolicyResources(), settings, k8spack.Pack())
	inProcess := map[finding]bool{}
	require.NotEmpty(t, rep.Violations())
	for _, r := range rep.Violations() {
		inProcess[finding{r.Policy, urnName(r.URN)}] = true
	}
	assert.Equal(t, keys(inProcess), keys(engine), "engine and in-process evaluation agree")

	// Advisory (dev): the up proceeds and reports the violations.
	dev, err := e.PolicyDir("dev", policypacks.Settings{Kind: "dev"}, k8spack.Pack())
	require.NoError(t, err)
	up, err = st.Up(ctx, optup.Policies(dev))
	require.NoError(t, err)
	var advisory []string
	require.NotEmpty(t, up.Policy)
	for _, f := range up.Policy {
		assert.False(t, f.Blocking(), "dev makes everything advisory: %+v", f)
		advisory = append(advisory, f.Policy)
	}
	assert.Contains(t, advisory, "no-privileged")
	_, err = k.CoreV1().Namespaces().Get(ctx, ns, kmeta.GetOptions{})
	assert.NoError(t, err, "advisory violations do not block")
}

func keys(m map[finding]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k.policy+" "+k.resource)
	}
	slices.Sort(out)
	return out
}

// TestPolicy_EngineMatchesInProcessAtEveryLevel: for the same non-compliant
// program, the engine's findings (through the analyzer, in a preview) and
// in-process findings (policypacks.Evaluate over the mocked graph) name the
// same policies on the same resources with the same consequence (blocking or
// advisory), at the advisory, mandatory and remediate levels. Remediate
// blocks in both. Nothing is created.
func TestPolicy_EngineMatchesInProcessAtEveryLevel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := newEngine(t)
	const ns = "policy-parity"
	st, err := e.UpsertStack(ctx, automation.Program{Project: "policy", Stack: "parity", Run: badProgram(cluster.Kubeconfig, ns), Plugins: []automation.Plugin{automation.KubernetesPlugin}})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = st.Destroy(context.Background(), optdestroy.RemoveStack()) })
	g, err := mocktest.Run(badProgram("", ns), nil)
	require.NoError(t, err)

	pack := k8spack.Pack()
	for _, level := range []policypacks.Enforcement{policypacks.Advisory, policypacks.Mandatory, policypacks.Remediate} {
		t.Run(string(level), func(t *testing.T) {
			s := policypacks.Settings{Kind: "prod", Overrides: map[string]policypacks.Override{}}
			for _, pol := range pack.Policies {
				s.Overrides[pol.Name] = policypacks.Override{Enforcement: level}
			}
			dir, err := e.PolicyDir("parity-"+string(level), s, pack)
			require.NoError(t, err)
			pre, err := st.Preview(ctx, optpreview.Policies(dir))
			if level == policypacks.Advisory {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.True(t, automation.IsPolicyBlocked(err), "%v", err)
			}
			require.NotNil(t, pre)

			engine := map[string]bool{}
			for _, f := range pre.Policy {
				if policypacks.IsUnverified(f.Policy) {
					continue
				}
				consequence := mocktest.Advisory
				if f.Blocking() {
					consequence = mocktest.Blocking
				}
				engine[f.Policy+" "+urnName(f.URN)+" "+consequence] = true
			}
			inProcess := map[string]bool{}
			for _, line := range g.InProcessFindings(s, pack) {
				policy, rest, _ := strings.Cut(line, " ")
				urn, consequence, _ := strings.Cut(rest, " ")
				if consequence != mocktest.Unverified {
					inProcess[policy+" "+urnName(urn)+" "+consequence] = true
				}
			}
			require.NotEmpty(t, inProcess)
			assert.Equal(t, slices.Sorted(maps.Keys(inProcess)), slices.Sorted(maps.Keys(engine)),
				"in-process (expected) and engine (actual) findings at %s", level)
			want := mocktest.Blocking
			if level == policypacks.Advisory {
				want = mocktest.Advisory
			}
			assert.True(t, engine["no-privileged bad "+want], "%v", engine)
			_, err = cluster.Client.CoreV1().Namespaces().Get(ctx, ns, kmeta.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "a preview creates nothing: %v", err)
		})
	}
}

// TestPolicy_ProgramPoliciesHoldOnEveryLibraryPath: a program's Policies
// hold on every library path that changes infrastructure, with no per-call
// option: up, several environments, ephemeral create, promotion, drift
// remediation and rollback. Each is given a non-compliant image and
// nothing is created or changed (checked through client-go).
func TestPolicy_ProgramPoliciesHoldOnEveryLibraryPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := newEngine(t)
	dir, err := e.PolicyDir("staging", policypacks.Settings{Kind: "staging"}, k8spack.Pack())
	require.NoError(t, err)
	const evil = "evil.example.com/web:1.0"
	prog := func(name, image string, policies bool) automation.Program {
		en := env(name, stacks.Staging, "hello")
		en.Params.App.Image = image
		p := program(t, en)
		if policies {
			p.Policies = []string{dir}
		}
		return p
	}
	gone := func(name string) {
		t.Helper()
		_, err := cluster.Client.CoreV1().Namespaces().Get(ctx, "slipway-"+name, kmeta.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing was created for %s: %v", name, err)
	}
	imageOf := func(name string) string {
		t.Helper()
		d, err := cluster.Client.AppsV1().Deployments("slipway-"+name).Get(ctx, "web", kmeta.GetOptions{})
		require.NoError(t, err)
		return d.Spec.Template.Spec.Containers[0].Image
	}
	destroyAfter(t, e, "lp-one", "lp-a", "lp-b", "lp-pr", "lp-stage", "lp-drift", "lp-rb")

	st, err := e.UpsertStack(ctx, prog("lp-one", evil, true))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	assert.True(t, automation.IsPolicyBlocked(err), "up: %v", err)
	gone("lp-one")

	for _, r := range e.Each(ctx, []automation.Program{prog("lp-a", evil, true), prog("lp-b", evil, true)}, automation.Up(), 2) {
		assert.True(t, automation.IsPolicyBlocked(r.Err), "%s: %v", r.Stack, r.Err)
		gone(r.Stack)
	}

	_, _, err = e.CreateEphemeral(ctx, prog("lp-pr", evil, true), "1", time.Hour)
	assert.True(t, automation.IsPolicyBlocked(err), "ephemeral create: %v", err)
	gone("lp-pr")

	_, err = e.Promote(ctx, []automation.Stage{{Name: "lp-stage", Release: automation.Release{Version: "v", Program: prog("lp-stage", evil, true)}}}, web.Definition.FromVersion)
	assert.True(t, automation.IsPolicyBlocked(err), "promote: %v", err)
	gone("lp-stage")

	// Drift remediation: a compliant environment drifts; remediating it with
	// a non-compliant program is blocked and changes nothing.
	st, err = e.UpsertStack(ctx, prog("lp-drift", "nginx:1.27", true))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)
	cm, err := cluster.Client.CoreV1().ConfigMaps("slipway-lp-drift").Get(ctx, "web-config", kmeta.GetOptions{})
	require.NoError(t, err)
	cm.Data["GREETING"] = "edited"
	_, err = cluster.Client.CoreV1().ConfigMaps("slipway-lp-drift").Update(ctx, cm, kmeta.UpdateOptions{})
	require.NoError(t, err)
	st, err = e.SelectStack(ctx, prog("lp-drift", evil, true))
	require.NoError(t, err)
	d, err := st.CheckDrift(ctx, optdrift.Remediate())
	assert.True(t, automation.IsPolicyBlocked(err), "remediation: %v", err)
	require.True(t, d.Found())
	assert.Equal(t, "nginx:1.27", imageOf("lp-drift"))
	assert.Equal(t, "edited", greeting(t, "slipway-lp-drift"), "the blocked remediation applied nothing")

	// Rollback: the earlier release is non-compliant (applied without
	// policies); rolling back to it under policies is blocked.
	st, err = e.UpsertStack(ctx, prog("lp-rb", evil, false))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)
	st, err = e.SelectStack(ctx, prog("lp-rb", "nginx:1.27", true))
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)
	withPolicies := func(v string) (automation.Program, error) {
		p, err := web.Definition.FromVersion(v)
		p.Policies = []string{dir}
		return p, err
	}
	_, _, err = e.Rollback(ctx, web.Project, "lp-rb", withPolicies)
	assert.True(t, automation.IsPolicyBlocked(err), "rollback: %v", err)
	assert.Equal(t, "nginx:1.27", imageOf("lp-rb"))
}

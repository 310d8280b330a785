package slipwaytest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
)

// privileged is a privileged Deployment of nginx:latest in the default
// namespace, without resources or probes.
func privileged(ctx *pulumi.Context) error {
	labels := pulumi.StringMap{"app": pulumi.String("web")}
	_, err := appsv1.NewDeployment(ctx, "web", &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("web"), Namespace: pulumi.String("default")},
		Spec: &appsv1.DeploymentSpecArgs{
			Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{
					Name: pulumi.String("web"), Image: pulumi.String("nginx:latest"),
					SecurityContext: &corev1.SecurityContextArgs{Privileged: pulumi.Bool(true)},
				}}},
			},
		},
	})
	return err
}

// tidy is a namespace with a NetworkPolicy and a ConfigMap in it; the
// ConfigMap's data holds the namespace's id, unknown in a preview.
func tidy(ctx *pulumi.Context) error {
	ns, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("team")}})
	if err != nil {
		return err
	}
	if _, err := networkingv1.NewNetworkPolicy(ctx, "deny", &networkingv1.NetworkPolicyArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("deny"), Namespace: ns.Metadata.Name().Elem()},
		Spec:     &networkingv1.NetworkPolicySpecArgs{PodSelector: &metav1.LabelSelectorArgs{}},
	}); err != nil {
		return err
	}
	greeting, _ := ctx.GetConfig("slipway:greeting")
	_, err = corev1.NewConfigMap(ctx, "config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("config"), Namespace: ns.Metadata.Name().Elem()},
		Data:     pulumi.StringMap{"ns": ns.ID().ToStringOutput(), "greeting": pulumi.String(greeting)},
	})
	return err
}

func TestMock_NonCompliantProgramFailsWithOneReadableLinePerFinding(t *testing.T) {
	g := slipwaytest.Mock(t, privileged, mocktest.Preview())
	require.Equal(t, 1, g.Count("kubernetes:apps/v1:Deployment"))
	fake := newFake(t)
	fake.do(func() {
		slipwaytest.AssertCompliant(fake, g, policypacks.Settings{Kind: "prod"}, kubernetes.Pack())
	})
	errs := fake.errors()
	lines := strings.Split(errs, "\n")
	require.Greater(t, len(lines), 2, errs)
	assert.Regexp(t, `^slipwaytest: \d+ blocking policy finding\(s\) in a prod environment:$`, lines[0])
	for _, l := range lines[1:] {
		assert.Regexp(t, `^  (mandatory|remediate) slipway-kubernetes/[a-z-]+: kubernetes:apps/v1:Deployment web: .+$`, l)
	}
	assert.Contains(t, errs, "  mandatory slipway-kubernetes/no-privileged: kubernetes:apps/v1:Deployment web: ")
	assert.Contains(t, errs, "  mandatory slipway-kubernetes/image-pinned: kubernetes:apps/v1:Deployment web: ")
	assert.Contains(t, errs, "  mandatory slipway-kubernetes/no-default-namespace: kubernetes:apps/v1:Deployment web: ")

	// In dev, the same findings are advisory: nothing blocks.
	dev := slipwaytest.Findings(g, policypacks.Settings{Kind: "dev"}, kubernetes.Pack())
	require.NotEmpty(t, dev)
	for _, f := range dev {
		assert.False(t, f.Blocking(), slipwaytest.FormatFinding(f))
	}
	slipwaytest.AssertCompliant(t, g, policypacks.Settings{Kind: "dev"}, kubernetes.Pack())
}

func TestMock_CompliantProgramPassesAndUnknownsArePreserved(t *testing.T) {
	g := slipwaytest.Mock(t, tidy, mocktest.Preview(), mocktest.Config(map[string]string{"slipway:greeting": "hi"}))
	fake := newFake(t)
	fake.do(func() {
		slipwaytest.AssertCompliant(fake, g, policypacks.Settings{Kind: "prod"}, kubernetes.Pack())
	})
	assert.Empty(t, fake.errors())
	cm, ok := g.Named("kubernetes:core/v1:ConfigMap", "config")
	require.True(t, ok)
	data := cm.Inputs["data"].(map[string]any)
	assert.Equal(t, policypacks.Unknown, data["ns"], "a preview keeps the id unknown")
	assert.Equal(t, "hi", data["greeting"], "configuration reaches the program")

	g = slipwaytest.Mock(t, tidy)
	cm, _ = g.Named("kubernetes:core/v1:ConfigMap", "config")
	assert.Equal(t, "ns-id", cm.Inputs["data"].(map[string]any)["ns"], "an update knows it")

	// Invalid settings and a missing pack fail rather than pass silently.
	fake = newFake(t)
	fake.do(func() {
		slipwaytest.AssertCompliant(fake, g, policypacks.Settings{Overrides: map[string]policypacks.Override{"nope": {}}}, kubernetes.Pack())
	})
	assert.Contains(t, fake.errors(), `Settings.Overrides["nope"] names no policy`)
	fake = newFake(t)
	fake.do(func() { slipwaytest.AssertCompliant(fake, g, policypacks.Settings{}) })
	assert.Contains(t, fake.errors(), "without packs checks nothing")
}

func TestMock_ProgramErrorFailsTheTest(t *testing.T) {
	boom := func(*pulumi.Context) error { return errors.New("boom") }
	fake := newFake(t)
	fake.do(func() { slipwaytest.Mock(fake, boom) })
	assert.Contains(t, fake.errors(), "the program failed under mocks")
	assert.Contains(t, fake.errors(), "boom")
	_, err := mocktest.Run(boom, nil)
	assert.ErrorContains(t, err, "boom")
}

func TestRetry_CountsAttemptsAndKeepsTheLastError(t *testing.T) {
	ctx := context.Background()
	n := 0
	err := slipwaytest.Retry(ctx, 5, time.Millisecond, func(context.Context) error {
		n++
		if n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, n)

	start := time.Now()
	err = slipwaytest.Retry(ctx, 3, 10*time.Millisecond, func(context.Context) error { return errors.New("never") })
	var re *slipwaytest.RetryError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.Attempts)
	assert.EqualError(t, re.Last, "never")
	assert.Nil(t, re.Ctx)
	assert.Contains(t, err.Error(), "gave up after 3 attempt(s)")
	assert.Less(t, time.Since(start), time.Second, "two intervals, no sleep after the last attempt")

	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = slipwaytest.Retry(cctx, 0, 10*time.Millisecond, func(context.Context) error { return errors.New("still no") })
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Greater(t, re.Attempts, 1)
	assert.EqualError(t, re.Last, "still no")
}

func TestEventually_FailsWithAttemptsAndLastError(t *testing.T) {
	n := 0
	slipwaytest.Eventually(t, context.Background(), time.Second, time.Millisecond, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("wait")
		}
		return nil
	})
	assert.Equal(t, 3, n)

	fake := newFake(t)
	start := time.Now()
	fake.do(func() {
		slipwaytest.Eventually(fake, context.Background(), 100*time.Millisecond, 20*time.Millisecond, func(context.Context) error {
			return errors.New("pods not ready")
		})
	})
	took := time.Since(start)
	assert.Regexp(t, `condition not met within 100ms \(\d+ attempt\(s\)\); last error: pods not ready`, fake.errors())
	assert.Less(t, took, time.Second, "it stops at the timeout")
}

func TestRenderChanges_SortedWithoutTheUniqueName(t *testing.T) {
	res := &outcome.Result{Stack: "golden-ab12c", Resources: []outcome.ResourceChange{
		{URN: "urn:pulumi:golden-ab12c::p::kubernetes:core/v1:Namespace::golden-ab12c", Type: "kubernetes:core/v1:Namespace", Op: "create"},
		{URN: "urn:pulumi:golden-ab12c::p::kubernetes:core/v1:ConfigMap::cfg", Type: "kubernetes:core/v1:ConfigMap", Op: "update",
			Diffs: []string{"metadata", "data"}, DetailedDiff: map[string]string{"data.b": "update", "data.a": "add"}},
		{URN: "urn:pulumi:golden-ab12c::p::pulumi:pulumi:Stack::p-golden-ab12c", Type: "pulumi:pulumi:Stack", Op: "same"},
	}}
	assert.Equal(t, "create kubernetes:core/v1:Namespace <stack>\n"+
		"update kubernetes:core/v1:ConfigMap cfg diffs=data,metadata detailed=data.a:add,data.b:update\n",
		slipwaytest.RenderChanges(res))
	assert.Equal(t, "(no changes)\n", slipwaytest.RenderChanges(&outcome.Result{Stack: "s"}))
}

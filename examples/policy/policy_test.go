package policy_test

import (
	"strings"
	"testing"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/examples/policy"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
)

const digest = "ghcr.io/acme/shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// program registers a Namespace labelled team only, and three Deployments:
// one pinned by digest, one by tag, and one whose image is computed from
// the Namespace's id (unknown during a preview).
func program(ctx *pulumi.Context) error {
	ns, err := corev1.NewNamespace(ctx, "shop", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String("shop"), Labels: pulumi.StringMap{"team": pulumi.String("shop")}}})
	if err != nil {
		return err
	}
	labels := pulumi.StringMap{"app": pulumi.String("shop")}
	for name, image := range map[string]pulumi.StringInput{
		"pinned":   pulumi.String(digest),
		"tagged":   pulumi.String("ghcr.io/acme/shop:1.4.2"),
		"computed": pulumi.Sprintf("ghcr.io/acme/%s:1.0", ns.ID()),
	} {
		if _, err := appsv1.NewDeployment(ctx, name, &appsv1.DeploymentArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: ns.Metadata.Name().Elem()},
			Spec: &appsv1.DeploymentSpecArgs{
				Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
				Template: &corev1.PodTemplateSpecArgs{Metadata: &metav1.ObjectMetaArgs{Labels: labels},
					Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{Name: pulumi.String("app"), Image: image}}}},
			},
		}); err != nil {
			return err
		}
	}
	return nil
}

// short turns findings into "policy resource-name level" lines.
func short(fs []policypacks.Finding) []string {
	var out []string
	for _, f := range fs {
		level := string(f.Enforcement)
		if f.Unverified {
			level = "unverified"
		}
		out = append(out, f.Policy+" "+f.URN[strings.LastIndex(f.URN, ":")+1:]+" "+level)
	}
	return out
}

func TestPack_IsWellFormed(t *testing.T) {
	require.NoError(t, policy.Pack().Validate())
}

// In a preview (the mock's default) in prod: the Namespace lacks
// cost-center (mandatory: blocks), the tagged image blocks, the pinned one
// passes, and the computed image is unverified, never a pass.
func TestPack_InProcessInAPreview(t *testing.T) {
	g := slipwaytest.Mock(t, program, mocktest.Preview())
	rep := policypacks.Evaluate(g.PolicyResources(), policypacks.Settings{Kind: "prod"}, policy.Pack())
	assert.Equal(t, []string{
		"image-by-digest computed unverified",
		"image-by-digest tagged mandatory",
		"required-labels shop mandatory",
	}, short(rep.Results))
	require.Len(t, rep.Blocking(), 2)
	assert.Contains(t, rep.Blocking()[1].Message, "Namespace shop lacks the label(s) cost-center")
	assert.Contains(t, rep.Results[0].Message, "not known until update")
}

// As an update the computed image is known, and judged.
func TestPack_InProcessInAnUpdate(t *testing.T) {
	g := slipwaytest.Mock(t, program)
	rep := policypacks.Evaluate(g.PolicyResources(), policypacks.Settings{Kind: "prod"}, policy.Pack())
	assert.Equal(t, []string{
		"image-by-digest computed mandatory",
		"image-by-digest tagged mandatory",
		"required-labels shop mandatory",
	}, short(rep.Results))
}

// Configuration: an environment that asks only for the team label passes
// the Namespace; dev turns the mandatory rules advisory.
func TestPack_ConfigurationAndEnforcementPerEnvironment(t *testing.T) {
	g := slipwaytest.Mock(t, program)
	s := policypacks.Settings{Kind: "prod", Overrides: map[string]policypacks.Override{
		"required-labels": {Config: map[string]any{"labels": []any{"team"}}}}}
	require.NoError(t, s.Validate(policy.Pack()))
	assert.NotContains(t, short(policypacks.Evaluate(g.PolicyResources(), s, policy.Pack()).Results), "required-labels shop mandatory")

	dev := policypacks.Evaluate(g.PolicyResources(), policypacks.Settings{Kind: "dev"}, policy.Pack())
	assert.Len(t, dev.Results, 3)
	assert.Empty(t, dev.Blocking(), "advisory in dev")
}

// The engine's path: the pack as the analyzer the engine runs
// (policypacks.Analyzer, through policyx) reports exactly what in-process
// evaluation reports, blocking where it blocks, in a preview and an update,
// with and without the configuration override.
func TestPack_EngineAnalyzerAgreesWithInProcess(t *testing.T) {
	override := map[string]policypacks.Override{"required-labels": {Config: map[string]any{"labels": []any{"team"}}}}
	for _, preview := range []bool{true, false} {
		var opts []pulumi.RunOption
		if preview {
			opts = append(opts, mocktest.Preview())
		}
		g := slipwaytest.Mock(t, program, opts...)
		for _, s := range []policypacks.Settings{{Kind: "prod"}, {Kind: "dev"}, {Kind: "prod", Overrides: override}} {
			in := g.InProcessFindings(s, policy.Pack())
			en, err := g.EngineFindings(s, policy.Pack())
			require.NoError(t, err)
			assert.Equal(t, in, en, "preview %v, settings %+v", preview, s)
			assert.NotEmpty(t, in)
			if s.Kind == "prod" {
				assert.Contains(t, strings.Join(en, "\n"), mocktest.Blocking)
			}
			if preview {
				assert.Contains(t, strings.Join(en, "\n"), mocktest.Unverified, "the engine reports the unknown image too")
			}
		}
	}
}

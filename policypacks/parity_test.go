package policypacks_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/policypacks/aws"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// everyLevel is each enforcement level, applied to every policy of the packs
// by override, and the environment defaults (no override).
var everyLevel = []p.Enforcement{p.Advisory, p.Mandatory, p.Remediate, p.Disabled, ""}

func atLevel(env string, level p.Enforcement, packs ...*p.Pack) p.Settings {
	s := p.Settings{Kind: env}
	if level == "" {
		return s
	}
	s.Overrides = map[string]p.Override{}
	for _, pack := range packs {
		for _, pol := range pack.Policies {
			s.Overrides[pol.Name] = p.Override{Enforcement: level}
		}
	}
	return s
}

// badWorkload is a privileged, unbounded Deployment in a namespace without
// a NetworkPolicy; in a preview its image is not known (it is computed from
// the namespace's id).
func badWorkload(ctx *pulumi.Context) error {
	ns, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("team")}})
	if err != nil {
		return err
	}
	labels := pulumi.StringMap{"app": pulumi.String("bad")}
	for name, image := range map[string]pulumi.StringInput{
		"bad":      pulumi.String("nginx:latest"),
		"computed": pulumi.Sprintf("registry.example.com/%s:1.0", ns.ID()),
	} {
		if _, err := appsv1.NewDeployment(ctx, name, &appsv1.DeploymentArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: ns.Metadata.Name().Elem()},
			Spec: &appsv1.DeploymentSpecArgs{
				Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
				Template: &corev1.PodTemplateSpecArgs{
					Metadata: &metav1.ObjectMetaArgs{Labels: labels},
					Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name: pulumi.String("app"), Image: image,
						SecurityContext: &corev1.SecurityContextArgs{Privileged: pulumi.Bool(true)},
					}}},
				},
			},
		}); err != nil {
			return err
		}
	}
	return nil
}

type parityCase struct {
	name    string
	program pulumi.RunFunc
	env     string
	preview bool
	// want lists finding levels the case must produce at the environment
	// defaults, so that agreement is not agreement on nothing.
	want []string
}

func parityCases(t *testing.T) []parityCase {
	prog := func(e web.Environment) pulumi.RunFunc {
		pr, err := web.Definition.Program(e)
		require.NoError(t, err)
		return pr.Run
	}
	render := t.TempDir()
	k8s := func(kind stacks.Kind, image string) web.Environment {
		return web.Environment{Name: string(kind), Kind: kind, RenderDir: render,
			Params: web.Params{App: web.App{Image: image, Replicas: 2}}}
	}
	return []parityCase{
		{"bad workload prod", badWorkload, "prod", false, []string{mocktest.Blocking, mocktest.Advisory}},
		{"bad workload prod preview", badWorkload, "prod", true, []string{mocktest.Blocking, mocktest.Unverified}},
		{"bad workload dev", badWorkload, "dev", false, []string{mocktest.Advisory}},
		{"stacks kubernetes prod", prog(k8s(stacks.Prod, "nginx:1.27")), "prod", false, nil},
		{"stacks kubernetes unlisted registry", prog(k8s(stacks.Staging, "registry.example.com/web:1.0")), "staging", true,
			[]string{mocktest.Blocking}},
		{"stacks aws dev preview", prog(web.Environment{Name: "dev", Kind: stacks.Dev, Params: web.Params{Target: web.AWS}}), "dev", true,
			[]string{mocktest.Unverified}},
		{"stacks aws prod as ephemeral", prog(web.Environment{Name: "prod", Kind: stacks.Prod, Params: web.Params{Target: web.AWS}}), "ephemeral", false,
			[]string{mocktest.Advisory}},
	}
}

// levels returns the distinct levels (the last word) of finding lines.
func levels(lines []string) []string {
	var out []string
	for _, l := range lines {
		lvl := l[strings.LastIndexByte(l, ' ')+1:]
		if !slices.Contains(out, lvl) {
			out = append(out, lvl)
		}
	}
	return out
}

// TestParity_EngineAnalyzerAndInProcessAgreeAtEveryLevel: the analyzer the
// engine runs and in-process evaluation report the same findings (policy,
// resource, and whether each blocks, advises or could not be verified) over
// the stacks' programs, both targets, and a non-compliant workload, at
// every enforcement level, in updates and in previews (unknown values).
// Remediate blocks in both.
func TestParity_EngineAnalyzerAndInProcessAgreeAtEveryLevel(t *testing.T) {
	packs := all.Packs()
	for _, tc := range parityCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var opts []pulumi.RunOption
			if tc.preview {
				opts = append(opts, mocktest.Preview())
			}
			g, err := mocktest.Run(tc.program, nil, opts...)
			require.NoError(t, err)
			require.NotEmpty(t, g.Resources)
			for _, level := range everyLevel {
				s := atLevel(tc.env, level, packs...)
				in := g.InProcessFindings(s, packs...)
				en, err := g.EngineFindings(s, packs...)
				require.NoError(t, err)
				assert.Equal(t, in, en, "level %q: in-process (expected) and engine (actual) findings differ", level)
				switch level {
				case "":
					for _, w := range tc.want {
						assert.Contains(t, levels(in), w, "the case produces %s findings: %v", w, in)
					}
				case p.Disabled:
					assert.Empty(t, in, "disabled: nothing runs")
				case p.Advisory:
					assert.NotContains(t, levels(in), mocktest.Blocking)
				case p.Mandatory, p.Remediate:
					assert.NotContains(t, levels(in), mocktest.Advisory, "every verified violation blocks at %s", level)
				}
				if tc.preview && level != p.Disabled && slices.Contains(tc.want, mocktest.Unverified) {
					assert.Contains(t, levels(en), mocktest.Unverified, "the engine reports unverifiable checks too")
				}
			}
		})
	}
}

// TestParity_RemediateBlocksInBothWithAProposal: a policy with a Remediate
// function at the Remediate level blocks in-process (with the proposed fix
// attached) exactly as the engine, which never applies it, blocks.
func TestParity_RemediateBlocksInBothWithAProposal(t *testing.T) {
	pack := &p.Pack{Name: "fix", Policies: []*p.Policy{{
		Name: "encrypt-volumes", Description: "volumes are encrypted", Severity: p.High, Enforcement: p.Remediate,
		Types: []string{aws.EBSVolume},
		Validate: func(r p.Resource, a *p.Args) {
			on, st := r.Props.Bool("encrypted")
			a.Check(r, st, on, "not encrypted")
		},
		Remediate: func(p.Resource, p.Config) map[string]any { return map[string]any{"encrypted": true} },
	}}}
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		var v pulumi.CustomResourceState
		return ctx.RegisterResource(aws.EBSVolume, "plain", pulumi.Map{"encrypted": pulumi.Bool(false), "size": pulumi.Int(10)}, &v)
	}, nil)
	require.NoError(t, err)
	s := p.Settings{Kind: "prod"}
	rep := p.Evaluate(g.PolicyResources(), s, pack)
	require.Len(t, rep.Blocking(), 1)
	assert.Equal(t, map[string]any{"encrypted": true}, rep.Blocking()[0].Remediation)
	in := g.InProcessFindings(s, pack)
	en, err := g.EngineFindings(s, pack)
	require.NoError(t, err)
	require.Len(t, in, 1)
	assert.Contains(t, in[0], mocktest.Blocking)
	assert.Equal(t, in, en)
}

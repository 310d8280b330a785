package shop_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/examples/team/shop"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
	"github.com/slipwayhq/slipway/stacks"
)

// kubeconfig is a file for Check (under mocks nothing connects to it).
func kubeconfig(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	return p
}

// graph runs an environment's program under mocks.
func graph(t testing.TB, e shop.Env, opts ...pulumi.RunOption) *mocktest.Graph {
	t.Helper()
	prog, err := shop.Definition.Program(e)
	require.NoError(t, err)
	return slipwaytest.Mock(t, prog.Run, opts...)
}

// deployment returns the shop's Deployment under mocks.
func deployment(t testing.TB, g *mocktest.Graph) mocktest.Resource {
	t.Helper()
	ds := g.OfType("kubernetes:apps/v1:Deployment")
	require.Len(t, ds, 1)
	return ds[0]
}

func TestDefinition_DefaultsPerKind(t *testing.T) {
	dev, qa, staging, prod := shop.Definition.Env("dev", ""), shop.Definition.Env("qa", ""), shop.Definition.Env("staging", ""), shop.Definition.Env("prod", "")
	eph := shop.Definition.Env("pr-7", stacks.Ephemeral)
	assert.Equal(t, "shop-dev", dev.Params.Namespace)
	assert.Equal(t, "shop-pr-7", eph.Params.Namespace)
	assert.Equal(t, []int{1, 1, 2, 3, 1}, []int{dev.Params.Replicas, qa.Params.Replicas, staging.Params.Replicas, prod.Params.Replicas, eph.Params.Replicas})
	assert.Equal(t, []int{0, 0, 4, 10, 0}, []int{dev.Params.MaxReplicas, qa.Params.MaxReplicas, staging.Params.MaxReplicas, prod.Params.MaxReplicas, eph.Params.MaxReplicas})
	assert.Equal(t, []string{"debug", "debug", "info", "warn", "debug"},
		[]string{dev.Params.LogLevel, qa.Params.LogLevel, staging.Params.LogLevel, prod.Params.LogLevel, eph.Params.LogLevel})
	assert.Equal(t, "250m", dev.Params.Resources.CPULimit)
	assert.Equal(t, "1", prod.Params.Resources.CPULimit)
	assert.Equal(t, 10, dev.Params.Quota.Pods)
	assert.Equal(t, 50, prod.Params.Quota.Pods)

	// What is given wins over the kind's default.
	e := shop.Definition.WithDefaults(shop.Env{Name: "prod", Params: shop.Params{Replicas: 5, Namespace: "shop"}})
	assert.Equal(t, 5, e.Params.Replicas)
	assert.Equal(t, "shop", e.Params.Namespace)
	assert.Equal(t, 10, e.Params.MaxReplicas)
}

func TestDefinition_CheckNamesEveryField(t *testing.T) {
	kc := kubeconfig(t)
	err := shop.Definition.Check(shop.Env{Name: "prod", Kubeconfig: kc, Params: shop.Params{
		Image: "ghcr.io/acme/shop:latest", Replicas: 1, MaxReplicas: 0, LogLevel: "loud", QueueDepth: 20000,
		Settings:  map[string]string{"LOG_LEVEL": "debug", "bad key": "x"},
		Resources: shop.Resources{CPURequest: "lots"},
	}})
	var inv *stacks.InvalidError
	require.ErrorAs(t, err, &inv)
	msg := err.Error()
	assert.Contains(t, msg, `Env.Params.Image: "ghcr.io/acme/shop:latest" has no pinned tag; use an explicit version`)
	assert.Contains(t, msg, "Env.Params.Replicas: 1 is too few for a prod environment")
	assert.Contains(t, msg, `Env.Params.LogLevel: "loud" is not a level; use debug, info, warn or error`)
	assert.Contains(t, msg, "Env.Params.QueueDepth: 20000 is out of range; use 1 to 10000")
	assert.Contains(t, msg, `Env.Params.Settings: key "LOG_LEVEL" is set by the shop from LogLevel; set that instead`)
	assert.Contains(t, msg, `Env.Params.Settings: key "bad key" is not a valid ConfigMap key`)
	assert.Contains(t, msg, `Env.Params.Resources: workload: Args.CPURequest: "lots" is not a Kubernetes quantity`)
	assert.NotContains(t, msg, "Args.Image", "the image is reported once, in the definition's terms")

	err = shop.Definition.Check(shop.Env{Name: "dev", Kubeconfig: kc, Params: shop.Params{Replicas: 4, MaxReplicas: 2, Namespace: "kube-shop"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Env.Params.MaxReplicas: 2 is below Params.Replicas 4; raise it to at least 4")
	assert.Contains(t, err.Error(), `Env.Params.Namespace: "kube-shop" is reserved`)

	err = shop.Definition.Check(shop.Env{Name: "dev"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Env.Kubeconfig: is empty")

	for _, k := range stacks.Kinds() {
		assert.NoError(t, shop.Definition.Check(shop.Env{Name: "env-" + string(k), Kind: k, Kubeconfig: kc}), "%s defaults are valid", k)
	}
	assert.NoError(t, shop.Definition.Check(shop.Env{Name: "dev", RenderDir: t.TempDir()}), "rendering needs no cluster")
}

func TestDefinition_BuildFromFlags(t *testing.T) {
	kc := kubeconfig(t)
	img, ok := flag("image")
	require.True(t, ok, "the image flag")
	prog, err := shop.Definition.Build(stacks.Spec{Name: "dev", Kubeconfig: kc, Params: []stacks.Param{
		img.Param("nginx:1.27.1"), {Path: "replicas", Value: "2"}, {Path: "Settings", Value: "FEATURE_X=on"},
	}})
	require.NoError(t, err)
	assert.Equal(t, "shop", prog.Project)
	assert.Equal(t, "dev", prog.Stack)
	assert.Equal(t, []automation.Plugin{automation.KubernetesPlugin}, prog.Plugins)
	e, err := shop.Definition.ParseVersion(prog.Version)
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.27.1", e.Params.Image)
	assert.Equal(t, 2, e.Params.Replicas)

	// A bad value names the parameter; an unknown one lists those there are.
	_, err = shop.Definition.Build(stacks.Spec{Name: "dev", Kubeconfig: kc, Params: []stacks.Param{{Path: "replicas", Value: "abc"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "replicas")
	assert.Contains(t, err.Error(), "abc")
	_, err = shop.Definition.Build(stacks.Spec{Name: "dev", Kubeconfig: kc, Params: []stacks.Param{{Path: "Replica", Value: "2"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "QueueDepth")

	var def json.RawMessage
	def, err = shop.Definition.DefaultParams("prod", "")
	require.NoError(t, err)
	assert.Contains(t, string(def), `"Namespace":"shop-prod"`)
}

func flag(name string) (stacks.Flag, bool) {
	for _, f := range shop.Definition.Flags {
		if f.Name == name {
			return f, true
		}
	}
	return stacks.Flag{}, false
}

func TestProgram_KindsDifferOnlyInParameters(t *testing.T) {
	kc := kubeconfig(t)
	dev := graph(t, shop.Env{Name: "dev", Kubeconfig: kc}, mocktest.Preview())
	prod := graph(t, shop.Env{Name: "prod", Kubeconfig: kc}, mocktest.Preview())
	assert.EqualValues(t, 1, mocktest.Dig(deployment(t, dev).Inputs, "spec", "replicas"))
	assert.EqualValues(t, 3, mocktest.Dig(deployment(t, prod).Inputs, "spec", "replicas"))
	assert.Equal(t, 0, dev.Count("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"), "dev has a fixed size")
	assert.Equal(t, 1, prod.Count("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"), "prod scales")
	ns, ok := prod.Named("kubernetes:core/v1:Namespace", "baseline")
	require.True(t, ok)
	assert.Equal(t, "shop-prod", mocktest.Dig(ns.Inputs, "metadata", "name"))
	cm, ok := prod.Named("kubernetes:core/v1:ConfigMap", "config")
	require.True(t, ok)
	assert.Equal(t, map[string]any{"LOG_LEVEL": "warn", "QUEUE_DEPTH": "500", "SHOP_ENVIRONMENT": "prod"}, cm.Inputs["data"])
	assert.Equal(t, "1", mocktest.Dig(deployment(t, prod).Inputs, "spec", "template", "spec", "containers", 0, "resources", "limits", "cpu"))
	assert.Zero(t, prod.Count("kubernetes:core/v1:Secret"), "no secrets, no Secret")
}

func TestProgram_SecretsStaySecret(t *testing.T) {
	prog, err := shop.Definition.Program(shop.Env{Name: "dev", Kubeconfig: kubeconfig(t), Secrets: map[string]string{"DB_PASSWORD": "hunter2"}})
	require.NoError(t, err)
	assert.NotContains(t, prog.Version, "hunter2")
	cfg := map[string]string{stacks.SecretsConfigKey: prog.Config[stacks.SecretsConfigKey].Value}
	g := slipwaytest.Mock(t, prog.Run, mocktest.Preview(), mocktest.Config(cfg, stacks.SecretsConfigKey))
	secrets := g.OfType("kubernetes:core/v1:Secret")
	require.Len(t, secrets, 1)
	assert.Contains(t, secrets[0].SecretPaths, "data")
	assert.Equal(t, "shop-secrets", mocktest.Dig(deployment(t, g).Inputs, "spec", "template", "spec", "containers", 0, "envFrom", 1, "secretRef", "name"))
}

// The shop is compliant with the Kubernetes pack in every kind, with every
// policy mandatory (not only where the default levels make them so).
func TestProgram_CompliantInEveryKind(t *testing.T) {
	kc := kubeconfig(t)
	for _, k := range stacks.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			g := graph(t, shop.Env{Name: "env-" + string(k), Kind: k, Kubeconfig: kc})
			strict := policypacks.Settings{Kind: string(k), Levels: map[string]policypacks.Enforcement{string(k): policypacks.Mandatory}}
			slipwaytest.AssertCompliant(t, g, strict, kubernetes.Pack())
			for _, f := range slipwaytest.Findings(g, strict, kubernetes.Pack()) {
				assert.False(t, f.Unverified, "verified at update: %s", slipwaytest.FormatFinding(f))
			}
		})
	}
}

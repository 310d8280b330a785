package web

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/stacks"
)

func kubeconfig(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	return p
}

func program(t testing.TB, e Environment) automation.Program {
	t.Helper()
	prog, err := Definition.Program(e)
	require.NoError(t, err)
	return prog
}

func graph(t testing.TB, e Environment) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(program(t, e).Run, nil)
	require.NoError(t, err)
	return g
}

func TestDefinition_DefaultsPerKind(t *testing.T) {
	dev, staging, prod, eph := Definition.Env("dev", ""), Definition.Env("staging", ""), Definition.Env("prod", ""), Definition.Env("pr-1", stacks.Ephemeral)
	assert.Equal(t, stacks.Dev, dev.Kind)
	assert.Equal(t, stacks.Prod, prod.Kind, "the name is the kind")
	assert.Equal(t, Kubernetes, dev.Params.Target)
	assert.Equal(t, "slipway-dev", dev.Params.Namespace)
	assert.Equal(t, App{Name: "web", Image: "nginx:1.27", Replicas: 1, Strategy: "rolling"}, dev.Params.App)
	assert.Equal(t, 2, staging.Params.App.Replicas)
	assert.Equal(t, 3, prod.Params.App.Replicas)
	assert.Equal(t, []int{2, 3, 3, 2}, []int{dev.Params.AWS.AZCount, staging.Params.AWS.AZCount, prod.Params.AWS.AZCount, eph.Params.AWS.AZCount})
	assert.Equal(t, []string{network.NATSingle, network.NATPerAZ, network.NATNone},
		[]string{dev.Params.AWS.NAT, prod.Params.AWS.NAT, eph.Params.AWS.NAT})
	assert.Equal(t, "m6i.xlarge", prod.Params.AWS.NodeGroups[0].InstanceTypes[0])
	assert.Equal(t, 1, eph.Params.AWS.NodeGroups[0].DesiredSize)
	assert.Equal(t, map[string]string{"slipway:environment": "pr-1", "slipway:kind": "ephemeral"}, eph.Params.Tags)

	// Given values win, tags are merged, and no two environments share a map.
	e := Definition.WithDefaults(Environment{Name: "x", Kind: stacks.Prod,
		Params: Params{App: App{Replicas: 5}, Tags: map[string]string{"team": "a", "slipway:kind": "custom"}}})
	assert.Equal(t, 5, e.Params.App.Replicas)
	assert.Equal(t, map[string]string{"slipway:environment": "x", "slipway:kind": "custom", "team": "a"}, e.Params.Tags)
	e.Params.AWS.NodeGroups[0].InstanceTypes[0] = "changed"
	assert.Equal(t, "m6i.xlarge", Definition.Env("prod", "").Params.AWS.NodeGroups[0].InstanceTypes[0])
}

func TestEnvironment_OneProgramKindsDifferOnlyInParameters(t *testing.T) {
	kc := kubeconfig(t)
	dev := graph(t, Environment{Name: "dev", Kind: stacks.Dev, Kubeconfig: kc})
	prod := graph(t, Environment{Name: "prod", Kind: stacks.Prod, Kubeconfig: kc})
	assert.Equal(t, dev.Types(), prod.Types(), "the same program")
	replicas := func(g *mocktest.Graph) any {
		return g.OfType("kubernetes:apps/v1:Deployment")[0].Inputs["spec"].(map[string]any)["replicas"]
	}
	assert.EqualValues(t, 1, replicas(dev))
	assert.EqualValues(t, 3, replicas(prod))
	ns, _ := dev.Named("kubernetes:core/v1:Namespace", "baseline")
	assert.Equal(t, "slipway-dev", ns.Inputs["metadata"].(map[string]any)["name"])
}

func TestEnvironment_AWSTargetComposesEverything(t *testing.T) {
	prod := graph(t, Environment{Name: "prod", Kind: stacks.Prod, Params: Params{Target: AWS}})
	assert.Equal(t, 1, prod.Count("slipway:network:Network"))
	assert.Equal(t, 1, prod.Count("slipway:cluster:Cluster"))
	assert.Equal(t, 1, prod.Count("slipway:storage:Bucket"))
	assert.Equal(t, 1, prod.Count("slipway:baseline:Baseline"))
	assert.Equal(t, 1, prod.Count("slipway:workload:Workload"))
	assert.Equal(t, 3, prod.Count("aws:ec2/natGateway:NatGateway"), "prod: one NAT per AZ")
	for _, b := range prod.OfType("aws:s3/bucketV2:BucketV2") {
		assert.True(t, b.Protect, "prod data is protected: %s", b.Name)
	}
	tags := prod.OfType("aws:ec2/vpc:Vpc")[0].Inputs["tags"].(map[string]any)
	assert.Equal(t, "prod", tags["slipway:environment"])

	eph := graph(t, Environment{Name: "pr-7", Kind: stacks.Ephemeral, Params: Params{Target: AWS}})
	assert.Zero(t, eph.Count("aws:ec2/natGateway:NatGateway"), "ephemeral: no NAT")
	assert.Equal(t, prod.Types()[0], eph.Types()[0])
	for _, b := range eph.OfType("aws:s3/bucketV2:BucketV2") {
		assert.False(t, b.Protect)
	}
}

func TestEnvironment_BadInputIsRejectedBeforeTheEngine(t *testing.T) {
	kc := kubeconfig(t)
	ok := Environment{Name: "dev", Kubeconfig: kc}
	mod := func(f func(*Environment)) Environment { e := ok; f(&e); return e }
	aws := func(kind stacks.Kind, a AWSParams) Environment {
		return Environment{Name: "dev", Kind: kind, Params: Params{Target: AWS, AWS: a}}
	}
	cases := map[string]struct {
		env  Environment
		want string
	}{
		"no name":          {mod(func(e *Environment) { e.Name = "" }), "web: Env.Name: is empty"},
		"upper name":       {mod(func(e *Environment) { e.Name = "Dev" }), `Env.Name: "Dev" must be a lower-case DNS label`},
		"long name":        {mod(func(e *Environment) { e.Name = "a234567890123456789012345678901234567890x" }), "at most 40 characters"},
		"kind":             {mod(func(e *Environment) { e.Kind = "production" }), `Env.Kind: "production" is not a kind`},
		"target":           {mod(func(e *Environment) { e.Params.Target = "gcp" }), `Env.Params.Target: "gcp" is not a target`},
		"no kubeconfig":    {mod(func(e *Environment) { e.Kubeconfig = "" }), "Env.Kubeconfig: is empty"},
		"missing kubecfg":  {mod(func(e *Environment) { e.Kubeconfig = "/nonexistent/kubeconfig" }), "is not a readable file"},
		"namespace":        {mod(func(e *Environment) { e.Params.Namespace = "Bad_NS" }), `Env.Params.Namespace: "Bad_NS"`},
		"default ns":       {mod(func(e *Environment) { e.Params.Namespace = "default" }), `Env.Params.Namespace: "default" is reserved`},
		"kube ns":          {mod(func(e *Environment) { e.Params.Namespace = "kube-system" }), "is reserved"},
		"replicas":         {mod(func(e *Environment) { e.Params.App.Replicas = 500 }), "Env.Params.App.Replicas: 500 is out of range"},
		"prod replicas":    {mod(func(e *Environment) { e.Kind = stacks.Prod; e.Params.App.Replicas = 1 }), "too few for a prod environment"},
		"staging replicas": {mod(func(e *Environment) { e.Kind = stacks.Staging; e.Params.App.Replicas = 1 }), "too few for a staging environment"},
		"ready timeout":    {mod(func(e *Environment) { e.Params.App.ReadyTimeout = -time.Second }), "Env.Params.App.ReadyTimeout: -1s is negative"},
		"latest image":     {mod(func(e *Environment) { e.Params.App.Image = "nginx:latest" }), "has no pinned tag"},
		"untagged image":   {mod(func(e *Environment) { e.Params.App.Image = "nginx" }), "has no pinned tag"},
		"bad image":        {mod(func(e *Environment) { e.Params.App.Image = "NGINX!!" }), "is not an image reference"},
		"strategy":         {mod(func(e *Environment) { e.Params.App.Strategy = "big-bang" }), `"big-bang" is not a strategy`},
		"app name":         {mod(func(e *Environment) { e.Params.App.Name = "My App" }), `Env.Params.App: workload: Args.Name: "My App"`},
		"setting key":      {mod(func(e *Environment) { e.Params.App.Settings = map[string]string{"a b": "1"} }), `Env.Params.App.Settings: key "a b" is not a valid ConfigMap key`},
		"render aws":       {Environment{Name: "dev", RenderDir: t.TempDir(), Params: Params{Target: AWS}}, "Env.RenderDir: renders the kubernetes target only"},
		"vpc cidr":         {aws("", AWSParams{CIDR: "10.0.0.0/33"}), `Args.CIDR "10.0.0.0/33"`},
		"vpc small":        {aws("", AWSParams{CIDR: "10.0.0.0/24", AZCount: 6}), "too small for 6 AZs"},
		"azs":              {aws("", AWSParams{AZCount: 9}), "Args.AZCount 9"},
		"nat":              {aws("", AWSParams{NAT: "lots"}), `Args.NAT "lots"`},
		"ephemeral nat":    {aws(stacks.Ephemeral, AWSParams{NAT: "per-az"}), "Env.Params.AWS.NAT: per-az is not allowed in ephemeral"},
		"prod one az":      {aws(stacks.Prod, AWSParams{AZCount: 1}), "Env.Params.AWS.AZCount: 1 is too few for prod"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Definition.Program(tc.env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var inv *stacks.InvalidError
			assert.ErrorAs(t, err, &inv)
		})
	}
}

// TestEnvironment_AllProblemsAtOnce: one error lists every problem.
func TestEnvironment_AllProblemsAtOnce(t *testing.T) {
	_, err := Definition.Program(Environment{Name: "Bad", Kind: stacks.Dev, Params: Params{App: App{Replicas: 500, Image: "nginx"}}})
	require.Error(t, err)
	var inv *stacks.InvalidError
	require.ErrorAs(t, err, &inv)
	assert.GreaterOrEqual(t, len(inv.Problems), 4, "%v", err)
	for _, want := range []string{"Env.Name", "Env.Kubeconfig", "Env.Params.App.Replicas", "has no pinned tag"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestEnvironment_NodeGroupsAreValidatedByTheClusterComponent(t *testing.T) {
	e := Environment{Name: "dev", Params: Params{Target: AWS, AWS: AWSParams{NodeGroups: []cluster.NodeGroup{{Name: "g", MinSize: 5, DesiredSize: 1, MaxSize: 2}}}}}
	prog := program(t, e)
	_, err := mocktest.Run(prog.Run, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Args.NodeGroups[0] sizes min 5 / desired 1 / max 2")
}

func TestCatalog_StandardFourAreValid(t *testing.T) {
	kc := kubeconfig(t)
	var names []string
	for _, e := range Definition.Catalog(kc) {
		require.NoError(t, Definition.Check(e))
		names = append(names, e.Name)
	}
	assert.Equal(t, []string{"dev", "qa", "staging", "prod"}, names)
}

// TestDefinition_FlagsAndSpec: the CLI's shorthands are parameter paths,
// and a spec built from them is the environment the flags describe.
func TestDefinition_FlagsAndSpec(t *testing.T) {
	info := Definition.Info()
	assert.Equal(t, "web", info.Name)
	assert.Equal(t, Project, info.Project)
	var names []string
	flags := map[string]stacks.Flag{}
	for _, f := range info.Flags {
		names = append(names, f.Name)
		flags[f.Name] = f
	}
	assert.Equal(t, []string{"image", "replicas", "namespace", "set", "strategy", "gateway"}, names)
	assert.Contains(t, info.Paths, "App.Image")
	assert.Contains(t, info.Paths, "AWS.NodeGroups")

	kc := kubeconfig(t)
	prog, err := Definition.Build(stacks.Spec{Name: "staging", Kubeconfig: kc, Params: []stacks.Param{
		flags["image"].Param("nginx:1.28"), flags["replicas"].Param("4"), flags["namespace"].Param("team-a"),
		flags["set"].Param("A=1"), flags["set"].Param("B=2"),
	}})
	require.NoError(t, err)
	assert.Equal(t, "staging", prog.Stack)
	back, err := Definition.ParseVersion(prog.Version)
	require.NoError(t, err)
	assert.Equal(t, stacks.Staging, back.Kind)
	assert.Equal(t, App{Image: "nginx:1.28", Replicas: 4, Settings: map[string]string{"A": "1", "B": "2"}}, back.Params.App)
	assert.Equal(t, "team-a", back.Params.Namespace)

	_, err = Definition.Build(stacks.Spec{Name: "dev", Kubeconfig: kc, Params: []stacks.Param{flags["replicas"].Param("many")}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `App.Replicas="many": not an integer`)
}

const canary = "s3cr3t-canary-value"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func withSecrets(t testing.TB) Environment {
	return Environment{Name: "dev", Kubeconfig: kubeconfig(t),
		Params:  Params{App: App{Settings: map[string]string{"GREETING": "hello"}}},
		Secrets: map[string]string{"API_KEY": canary, "DB.PASSWORD": "pw-" + canary}}
}

// secretGraph runs prog under mocks with the stack configuration Program
// asks for (as the engine would pass it).
func secretGraph(t *testing.T, prog automation.Program, stackConfig map[string]automation.ConfigValue) *mocktest.Graph {
	t.Helper()
	cfg, secret := map[string]string{}, []string{}
	for k, v := range stackConfig {
		cfg[k] = v.Value
		if v.Secret {
			secret = append(secret, k)
		}
	}
	g, err := mocktest.Run(prog.Run, nil, mocktest.Config(cfg, secret...))
	require.NoError(t, err)
	return g
}

// TestEnvironment_SecretsReachTheWorkloadThroughASecretOnly: Env.Secrets
// travel as one secret stack configuration value, become a Kubernetes
// Secret whose data is secret (encrypted in state), reach the container
// through envFrom.secretRef, and appear nowhere in plain text: not in
// Version, not in the ConfigMap, not in any other resource's inputs.
func TestEnvironment_SecretsReachTheWorkloadThroughASecretOnly(t *testing.T) {
	e := withSecrets(t)
	prog := program(t, e)
	require.Contains(t, prog.Config, stacks.SecretsConfigKey)
	cv := prog.Config[stacks.SecretsConfigKey]
	assert.True(t, cv.Secret, "encrypted by the stack's secrets provider")
	var sent map[string]string
	require.NoError(t, json.Unmarshal([]byte(cv.Value), &sent))
	assert.Equal(t, e.Secrets, sent)

	assert.NotContains(t, Definition.Version(e), canary)
	assert.NotContains(t, prog.Version, canary)
	js, err := json.Marshal(e)
	require.NoError(t, err)
	assert.NotContains(t, string(js), canary)
	assert.NotContains(t, string(js), "API_KEY", "not even the keys are in JSON")

	g := secretGraph(t, prog, prog.Config)
	s, ok := g.Named("kubernetes:core/v1:Secret", "secrets")
	require.True(t, ok, "the Secret is registered: %v", g.Types())
	assert.Equal(t, "web-secrets", mocktest.Dig(s.Inputs, "metadata", "name"))
	assert.Equal(t, "slipway-dev", mocktest.Dig(s.Inputs, "metadata", "namespace"))
	assert.Equal(t, map[string]any{"API_KEY": b64(canary), "DB.PASSWORD": b64("pw-" + canary)}, mocktest.Dig(s.Inputs, "data"))
	assert.Contains(t, s.SecretPaths, "data", "the data is marked secret, so the state holds it encrypted")

	d := g.OfType("kubernetes:apps/v1:Deployment")
	require.Len(t, d, 1)
	c := mocktest.Dig(d[0].Inputs, "spec", "template", "spec", "containers", 0)
	assert.Equal(t, "web-config", mocktest.Dig(c, "envFrom", 0, "configMapRef", "name"))
	assert.Equal(t, "web-secrets", mocktest.Dig(c, "envFrom", 1, "secretRef", "name"))

	cm, ok := g.Named("kubernetes:core/v1:ConfigMap", "config")
	require.True(t, ok)
	assert.Equal(t, map[string]any{"GREETING": "hello"}, mocktest.Dig(cm.Inputs, "data"), "secrets stay out of the ConfigMap")
	require.NotEmpty(t, g.Resources)
	for _, r := range g.Resources {
		if r.Type == "kubernetes:core/v1:Secret" {
			continue
		}
		b, err := json.Marshal(r.Inputs)
		require.NoError(t, err)
		assert.NotContains(t, string(b), canary, "%s %s holds a secret in plain text", r.Type, r.Name)
		assert.NotContains(t, string(b), b64(canary), "%s %s holds a secret in base64", r.Type, r.Name)
	}
}

// TestEnvironment_NoSecretsNoSecretObject: without secrets there is no
// secret configuration, no Secret and no secretRef.
func TestEnvironment_NoSecretsNoSecretObject(t *testing.T) {
	prog := program(t, Environment{Name: "dev", Kubeconfig: kubeconfig(t)})
	assert.NotContains(t, prog.Config, stacks.SecretsConfigKey)
	g := secretGraph(t, prog, nil)
	assert.Zero(t, g.Count("kubernetes:core/v1:Secret"))
	d := g.OfType("kubernetes:apps/v1:Deployment")
	require.Len(t, d, 1)
	envFrom := mocktest.Dig(d[0].Inputs, "spec", "template", "spec", "containers", 0, "envFrom")
	assert.Len(t, envFrom, 1, "the ConfigMap only: %v", envFrom)
	assert.Nil(t, mocktest.Dig(envFrom, 0, "secretRef"))
}

// TestEnvironment_RollbackKeepsTheStacksSecrets: a program rebuilt from
// Version carries no secrets and writes no secret configuration, so the
// stack keeps the encrypted set it has and the Secret stays.
func TestEnvironment_RollbackKeepsTheStacksSecrets(t *testing.T) {
	e := withSecrets(t)
	first := program(t, e)
	back, err := Definition.FromVersion(Definition.Version(e))
	require.NoError(t, err)
	assert.Empty(t, back.Config, "nothing overwrites the stack's secrets")
	assert.Equal(t, first.Version, back.Version)
	g := secretGraph(t, back, first.Config) // the stack's configuration from the first up
	s, ok := g.Named("kubernetes:core/v1:Secret", "secrets")
	require.True(t, ok)
	assert.Equal(t, b64(canary), mocktest.Dig(s.Inputs, "data", "API_KEY"))
}

// TestEnvironment_PlainSecretsConfigIsRefused: a secrets configuration that
// is not stored as a secret (it would sit in plain text in the state) or is
// not a JSON object fails the program, naming the key and not the value.
func TestEnvironment_PlainSecretsConfigIsRefused(t *testing.T) {
	prog := program(t, Environment{Name: "dev", Kubeconfig: kubeconfig(t)})
	_, err := mocktest.Run(prog.Run, nil, mocktest.Config(map[string]string{stacks.SecretsConfigKey: `{"K":"` + canary + `"}`}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), stacks.SecretsConfigKey+" is not secret")
	assert.NotContains(t, err.Error(), canary)

	_, err = mocktest.Run(prog.Run, nil, mocktest.Config(map[string]string{stacks.SecretsConfigKey: canary}, stacks.SecretsConfigKey))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a JSON object of strings")
	assert.NotContains(t, err.Error(), canary)
}

// TestEnvironment_SecretKeysAreValidatedAndValuesNeverShown: a bad secret
// key is refused, naming Env.Secrets and the key but never a value;
// secrets cannot be rendered to YAML, neither given nor from the stack.
func TestEnvironment_SecretKeysAreValidatedAndValuesNeverShown(t *testing.T) {
	e := Environment{Name: "dev", Kubeconfig: kubeconfig(t), Secrets: map[string]string{"a b": canary, "ok": canary}}
	_, err := Definition.Program(e)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Env.Secrets: key "a b" is not a valid secret key`)
	assert.NotContains(t, err.Error(), `"ok"`)
	assert.NotContains(t, err.Error(), canary)

	r := Environment{Name: "dev", RenderDir: t.TempDir(), Secrets: map[string]string{"K": canary}}
	_, err = Definition.Program(r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Env.Secrets: cannot be rendered (RenderDir)")
	assert.NotContains(t, err.Error(), canary)

	r.Secrets = nil
	prog := program(t, r)
	_, err = mocktest.Run(prog.Run, nil, mocktest.Config(map[string]string{stacks.SecretsConfigKey: `{"K":"` + canary + `"}`}, stacks.SecretsConfigKey))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "which rendering (RenderDir) would write in plain text")
	assert.NotContains(t, err.Error(), canary)
}

// TestEnvironment_ProgramCarriesVersionAndPlugins: every program carries
// its Version (for release records) and the plugins it needs: the
// Kubernetes provider always, the AWS provider at the version the
// toolchain pins for the aws target.
func TestEnvironment_ProgramCarriesVersionAndPlugins(t *testing.T) {
	k := Environment{Name: "dev", Kubeconfig: kubeconfig(t)}
	kp := program(t, k)
	assert.Equal(t, Project, kp.Project)
	assert.Equal(t, Definition.Version(k), kp.Version)
	assert.Equal(t, []automation.Plugin{automation.KubernetesPlugin}, kp.Plugins)

	a := Environment{Name: "prod", Kind: stacks.Prod, Params: Params{Target: AWS}}
	ap := program(t, a)
	assert.Equal(t, Definition.Version(a), ap.Version)
	assert.Equal(t, []automation.Plugin{automation.KubernetesPlugin, {Name: "aws", Version: toolchain.AWSProviderVersion}}, ap.Plugins)
	back, err := Definition.FromVersion(ap.Version)
	require.NoError(t, err)
	assert.Equal(t, ap.Plugins, back.Plugins, "a rollback needs the same plugins")

	r := Environment{Name: "dev", RenderDir: t.TempDir()}
	rp := program(t, r)
	assert.Equal(t, Definition.Version(r), rp.Version)
	assert.Equal(t, "dev-render", rp.Stack)
	g, err := mocktest.Run(rp.Run, nil)
	require.NoError(t, err)
	p := g.OfType("pulumi:providers:kubernetes")
	require.Len(t, p, 1)
	assert.Equal(t, r.RenderDir, p[0].Inputs["renderYamlToDirectory"])
}

// canaryVersions are the versions of a stable and a next release of dev,
// both canaries with a route.
func canaryVersions(t *testing.T, kc, stableImage, nextImage string) (stable, next string) {
	t.Helper()
	e := Environment{Name: "dev", Kubeconfig: kc, Params: Params{App: App{Image: stableImage, Strategy: workload.Canary, Route: Route{Gateway: "shop-gw"}}}}
	stable = Definition.Version(e)
	e.Params.App.Image = nextImage
	return stable, Definition.Version(e)
}

func TestDefinition_CanaryAtRunsTheNewImageBesideStableAtTheWeight(t *testing.T) {
	kc := kubeconfig(t)
	stable, next := canaryVersions(t, kc, "nginx:1.27", "nginx:1.28")
	prog, err := Definition.CanaryAt(next, stable, 30)
	require.NoError(t, err)
	assert.Equal(t, next, prog.Version, "every weight step is an update of the release")
	g, err := mocktest.Run(prog.Run, nil)
	require.NoError(t, err)
	images := map[string]string{}
	for _, d := range g.OfType("kubernetes:apps/v1:Deployment") {
		c := d.Inputs["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		images[d.Inputs["metadata"].(map[string]any)["name"].(string)] = c["image"].(string)
	}
	assert.Equal(t, map[string]string{"web": "nginx:1.27", "web-canary": "nginx:1.28"}, images)
	routes := g.OfType("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
	require.Len(t, routes, 1, "the route splits the traffic")
	assert.Contains(t, fmt.Sprint(routes[0].Inputs["spec"]), "weight:30")

	plain, err := Definition.FromVersion(next)
	require.NoError(t, err)
	g, err = mocktest.Run(plain.Run, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, g.Count("kubernetes:apps/v1:Deployment"), "an up of the release is the promotion: no canary")
}

func TestDefinition_CanaryAtRefusesWhatCannotRollOut(t *testing.T) {
	kc := kubeconfig(t)
	stable, next := canaryVersions(t, kc, "nginx:1.27", "nginx:1.28")
	rolling := Definition.Version(Environment{Name: "dev", Kubeconfig: kc, Params: Params{App: App{Image: "nginx:1.28"}}})
	for name, c := range map[string]struct {
		next, stable string
		weight       int
		want         string
	}{
		"rolling release":  {rolling, stable, 10, `Params.App.Strategy: is "rolling"; a rollout needs canary (--strategy canary)`},
		"same image":       {stable, stable, 10, `Params.App.Image: "nginx:1.27" is what the last good release runs`},
		"weight too large": {next, stable, 101, "Canary.Weight"},
		"other stack":      {next, Definition.Version(Environment{Name: "qa", Kubeconfig: kc, Params: Params{App: App{Strategy: workload.Canary}}}), 10, "the stable release is of stack qa, not dev"},
		"not a version":    {"{nope", stable, 10, "version is not an encoded web environment"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Definition.CanaryAt(c.next, c.stable, c.weight)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err := Definition.Build(stacks.Spec{Name: "dev", Kubeconfig: kc, Params: []stacks.Param{{Path: "App.Route.Hostnames", Value: "shop.example.com"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Params.App.Route.Gateway: is empty")
}

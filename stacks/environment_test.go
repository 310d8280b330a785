package stacks

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

func kubeconfig(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	return p
}

func graph(t testing.TB, e Environment) *mocktest.Graph {
	t.Helper()
	prog, err := e.Program()
	require.NoError(t, err)
	g, err := mocktest.Run(prog.Run, nil)
	require.NoError(t, err)
	return g
}

func TestEnvironment_OneProgramKindsDifferOnlyInParameters(t *testing.T) {
	kc := kubeconfig(t)
	dev := graph(t, Environment{Name: "dev", Kind: Dev, Kubeconfig: kc})
	prod := graph(t, Environment{Name: "prod", Kind: Prod, Kubeconfig: kc})
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
	prod := graph(t, Environment{Name: "prod", Kind: Prod, Target: AWS})
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

	eph := graph(t, Environment{Name: "pr-7", Kind: Ephemeral, Target: AWS})
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
	cases := map[string]struct {
		env  Environment
		want string
	}{
		"no name":          {mod(func(e *Environment) { e.Name = "" }), "Environment.Name is empty"},
		"upper name":       {mod(func(e *Environment) { e.Name = "Dev" }), `Environment.Name: "Dev" must be a lower-case DNS label`},
		"long name":        {mod(func(e *Environment) { e.Name = "a234567890123456789012345678901234567890x" }), "at most 40 characters"},
		"kind":             {mod(func(e *Environment) { e.Kind = "production" }), `Environment.Kind: "production" is not a kind`},
		"target":           {mod(func(e *Environment) { e.Target = "gcp" }), `Environment.Target: "gcp" is not a target`},
		"no kubeconfig":    {mod(func(e *Environment) { e.Kubeconfig = "" }), "Environment.Kubeconfig: is empty"},
		"missing kubecfg":  {mod(func(e *Environment) { e.Kubeconfig = "/nonexistent/kubeconfig" }), "is not a readable file"},
		"namespace":        {mod(func(e *Environment) { e.Namespace = "Bad_NS" }), `Environment.Namespace: "Bad_NS"`},
		"default ns":       {mod(func(e *Environment) { e.Namespace = "default" }), `Environment.Namespace: "default" is reserved`},
		"kube ns":          {mod(func(e *Environment) { e.Namespace = "kube-system" }), "is reserved"},
		"replicas":         {mod(func(e *Environment) { e.App.Replicas = 500 }), "Environment.App.Replicas: 500 is out of range"},
		"prod replicas":    {mod(func(e *Environment) { e.Kind = Prod; e.App.Replicas = 1 }), "too few for a prod environment"},
		"staging replicas": {mod(func(e *Environment) { e.Kind = Staging; e.App.Replicas = 1 }), "too few for a staging environment"},
		"latest image":     {mod(func(e *Environment) { e.App.Image = "nginx:latest" }), "has no pinned tag"},
		"untagged image":   {mod(func(e *Environment) { e.App.Image = "nginx" }), "has no pinned tag"},
		"bad image":        {mod(func(e *Environment) { e.App.Image = "NGINX!!" }), "is not an image reference"},
		"strategy":         {mod(func(e *Environment) { e.App.Strategy = "big-bang" }), `"big-bang" is not a strategy`},
		"app name":         {mod(func(e *Environment) { e.App.Name = "My App" }), `Args.Name: "My App"`},
		"setting key":      {mod(func(e *Environment) { e.App.Settings = map[string]string{"a b": "1"} }), `key "a b" is not a valid ConfigMap key`},
		"vpc cidr":         {Environment{Name: "x", Target: AWS, AWS: AWSParams{CIDR: "10.0.0.0/33"}}, `Args.CIDR "10.0.0.0/33"`},
		"vpc small":        {Environment{Name: "x", Target: AWS, AWS: AWSParams{CIDR: "10.0.0.0/24", AZCount: 6}}, "too small for 6 AZs"},
		"azs":              {Environment{Name: "x", Target: AWS, AWS: AWSParams{AZCount: 9}}, "Args.AZCount 9"},
		"nat":              {Environment{Name: "x", Target: AWS, AWS: AWSParams{NAT: "lots"}}, `Args.NAT "lots"`},
		"ephemeral nat":    {Environment{Name: "x", Kind: Ephemeral, Target: AWS, AWS: AWSParams{NAT: "per-az"}}, "per-az is not allowed in ephemeral"},
		"prod one az":      {Environment{Name: "x", Kind: Prod, Target: AWS, App: App{Replicas: 2}, AWS: AWSParams{AZCount: 1}}, "too few for prod"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := tc.env.Program()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEnvironment_NodeGroupsAreValidatedByTheClusterComponent(t *testing.T) {
	e := Environment{Name: "x", Target: AWS, AWS: AWSParams{NodeGroups: []cluster.NodeGroup{{Name: "g", MinSize: 5, DesiredSize: 1, MaxSize: 2}}}}
	prog, err := e.Program()
	require.NoError(t, err, "network and app are fine")
	_, err = mocktest.Run(prog.Run, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Args.NodeGroups[0] sizes min 5 / desired 1 / max 2")
}

func TestWithAnnotation_KeepsEverythingElse(t *testing.T) {
	props := pulumi.Map{"metadata": pulumi.Map{"name": pulumi.String("x"), "annotations": pulumi.Map{"a": pulumi.String("1")}},
		"data": pulumi.Map{"k": pulumi.String("v")}}
	out := withAnnotation(props, forceApply, "true")
	meta := out["metadata"].(pulumi.Map)
	assert.Equal(t, pulumi.String("x"), meta["name"])
	assert.Equal(t, pulumi.String("1"), meta["annotations"].(pulumi.Map)["a"])
	assert.Equal(t, pulumi.String("true"), meta["annotations"].(pulumi.Map)[forceApply])
	assert.Equal(t, props["data"], out["data"])
	assert.Equal(t, pulumi.Map{"metadata": pulumi.Map{"annotations": pulumi.Map{forceApply: pulumi.String("true")}}},
		withAnnotation(pulumi.Map{}, forceApply, "true"))
}

func TestCatalog_StandardFourAreValid(t *testing.T) {
	kc := kubeconfig(t)
	var names []string
	for _, e := range Catalog(kc) {
		require.NoError(t, e.Validate())
		names = append(names, e.Name)
	}
	assert.Equal(t, []string{"dev", "qa", "staging", "prod"}, names)
}

const canary = "s3cr3t-canary-value"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func withSecrets(t testing.TB) Environment {
	return Environment{Name: "dev", Kubeconfig: kubeconfig(t),
		App: App{Settings: map[string]string{"GREETING": "hello"}, Secrets: map[string]string{"API_KEY": canary, "DB.PASSWORD": "pw-" + canary}}}
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

// TestEnvironment_SecretsReachTheWorkloadThroughASecretOnly: App.Secrets
// travel as one secret stack configuration value, become a Kubernetes
// Secret whose data is secret (encrypted in state), reach the container
// through envFrom.secretRef, and appear nowhere in plain text: not in
// Version, not in the ConfigMap, not in any other resource's inputs.
func TestEnvironment_SecretsReachTheWorkloadThroughASecretOnly(t *testing.T) {
	e := withSecrets(t)
	prog, err := e.Program()
	require.NoError(t, err)
	require.Contains(t, prog.Config, SecretsConfigKey)
	cv := prog.Config[SecretsConfigKey]
	assert.True(t, cv.Secret, "encrypted by the stack's secrets provider")
	var sent map[string]string
	require.NoError(t, json.Unmarshal([]byte(cv.Value), &sent))
	assert.Equal(t, e.App.Secrets, sent)

	assert.NotContains(t, e.Version(), canary)
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
	prog, err := Environment{Name: "dev", Kubeconfig: kubeconfig(t)}.Program()
	require.NoError(t, err)
	assert.NotContains(t, prog.Config, SecretsConfigKey)
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
	first, err := e.Program()
	require.NoError(t, err)
	back, err := ProgramFromVersion(e.Version())
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
	prog, err := Environment{Name: "dev", Kubeconfig: kubeconfig(t)}.Program()
	require.NoError(t, err)
	_, err = mocktest.Run(prog.Run, nil, mocktest.Config(map[string]string{SecretsConfigKey: `{"K":"` + canary + `"}`}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), SecretsConfigKey+" is not secret")
	assert.NotContains(t, err.Error(), canary)

	_, err = mocktest.Run(prog.Run, nil, mocktest.Config(map[string]string{SecretsConfigKey: canary}, SecretsConfigKey))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a JSON object of strings")
	assert.NotContains(t, err.Error(), canary)
}

// TestEnvironment_SecretKeysAreValidatedAndValuesNeverShown: a bad secret
// key is refused like a bad settings key, naming Environment.App.Secrets
// and the key but never a value; secrets cannot be rendered to YAML.
func TestEnvironment_SecretKeysAreValidatedAndValuesNeverShown(t *testing.T) {
	e := Environment{Name: "dev", Kubeconfig: kubeconfig(t), App: App{Secrets: map[string]string{"a b": canary, "ok": canary}}}
	_, err := e.Program()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Environment.App.Secrets: key "a b" is not a valid Secret key`)
	assert.NotContains(t, err.Error(), `"ok"`)
	assert.NotContains(t, err.Error(), canary)

	r := Environment{Name: "dev", RenderDir: t.TempDir(), App: App{Secrets: map[string]string{"K": canary}}}
	_, err = r.Program()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Environment.App.Secrets: cannot be rendered (RenderDir)")
	assert.NotContains(t, err.Error(), canary)
}

// TestEnvironment_ProgramCarriesVersionAndPlugins: every program carries
// its Version (for release records); the AWS target declares the AWS
// provider plugin it needs at the version the toolchain pins, the
// kubernetes target none (Slipway builds the Kubernetes provider).
func TestEnvironment_ProgramCarriesVersionAndPlugins(t *testing.T) {
	k := Environment{Name: "dev", Kubeconfig: kubeconfig(t)}
	kp, err := k.Program()
	require.NoError(t, err)
	assert.Equal(t, k.Version(), kp.Version)
	assert.Empty(t, kp.Plugins)

	a := Environment{Name: "prod", Kind: Prod, Target: AWS}
	ap, err := a.Program()
	require.NoError(t, err)
	assert.Equal(t, a.Version(), ap.Version)
	assert.Equal(t, []automation.Plugin{{Name: "aws", Version: toolchain.AWSProviderVersion}}, ap.Plugins)
	back, err := ProgramFromVersion(ap.Version)
	require.NoError(t, err)
	assert.Equal(t, ap.Plugins, back.Plugins, "a rollback needs the same plugin")

	r := Environment{Name: "dev", RenderDir: t.TempDir()}
	rp, err := r.Program()
	require.NoError(t, err)
	assert.Equal(t, r.Version(), rp.Version)
	assert.Equal(t, "dev-render", rp.Stack)
}

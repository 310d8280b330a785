package stacks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

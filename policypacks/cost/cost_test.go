package cost_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/cost"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

func obj(typ, name string, props map[string]any) p.Resource {
	return p.Resource{URN: "urn:pulumi:s::p::" + typ + "::" + name, Type: typ, Name: name, Props: p.FromPlain(props)}
}

func ng(types []any, max int) p.Resource {
	return obj(cost.NodeGroup, "ng", map[string]any{"instanceTypes": types, "scalingConfig": map[string]any{"maxSize": max}})
}

type fixture struct {
	policy, env string
	config      map[string]any
	pass, fail  []p.Resource
}

var fixtures = []fixture{
	{policy: "instance-types", env: "dev", pass: []p.Resource{ng([]any{"t3.large"}, 2)}, fail: []p.Resource{ng([]any{"m6i.4xlarge"}, 2)}},
	{policy: "instance-types", env: "prod", pass: []p.Resource{obj(cost.Instance, "i", map[string]any{"instanceType": "m6i.large"})},
		fail: []p.Resource{obj(cost.Instance, "i", map[string]any{"instanceType": "p5.48xlarge"})}},
	{policy: "instance-types", env: "dev", config: map[string]any{"instanceTypes": map[string]any{"dev": []any{"m6i.4xlarge"}}},
		pass: []p.Resource{ng([]any{"m6i.4xlarge"}, 2)}, fail: []p.Resource{ng([]any{"t3.large"}, 2)}},
	{policy: "node-group-size", env: "dev", pass: []p.Resource{ng([]any{"t3.large"}, 3)}, fail: []p.Resource{ng([]any{"t3.large"}, 4)}},
	{policy: "node-group-size", env: "prod", pass: []p.Resource{ng([]any{"m6i.large"}, 40)}},
	{policy: "no-nat-per-az-ephemeral", env: "ephemeral", pass: []p.Resource{obj(cost.NatGateway, "a", nil)},
		fail: []p.Resource{obj(cost.NatGateway, "a", nil), obj(cost.NatGateway, "b", nil)}},
	{policy: "no-nat-per-az-ephemeral", env: "prod", pass: []p.Resource{obj(cost.NatGateway, "a", nil), obj(cost.NatGateway, "b", nil)}},
	{policy: "storage-limits", env: "dev", pass: []p.Resource{obj(cost.EBSVolume, "v", map[string]any{"size": 20, "type": "gp3"})},
		fail: []p.Resource{obj(cost.EBSVolume, "v", map[string]any{"size": 2000, "type": "gp3"}), obj(cost.EBSVolume, "w", map[string]any{"size": 10, "type": "io2"})}},
	{policy: "storage-limits", env: "dev", config: map[string]any{"storageClasses": []any{"gp3"}},
		pass: []p.Resource{obj(cost.PVC, "c", map[string]any{"spec": map[string]any{"storageClassName": "gp3", "resources": map[string]any{"requests": map[string]any{"storage": "10Gi"}}}})},
		fail: []p.Resource{obj(cost.PVC, "c", map[string]any{"spec": map[string]any{"storageClassName": "io2", "resources": map[string]any{"requests": map[string]any{"storage": "1Ti"}}}})}},
}

func only(policy, env string, config map[string]any) p.Settings {
	s := p.Settings{Kind: env, Levels: map[string]p.Enforcement{}, Overrides: map[string]p.Override{}}
	for _, pol := range cost.Pack().Policies {
		if pol.Name != policy {
			s.Overrides[pol.Name] = p.Override{Enforcement: p.Disabled}
		}
	}
	s.Overrides[policy] = p.Override{Config: config}
	return s
}

func TestPack_EveryRuleHasPassingAndFailingFixtures(t *testing.T) {
	require.NoError(t, cost.Pack().Validate())
	pass, fail := map[string]bool{}, map[string]bool{}
	for _, f := range fixtures {
		t.Run(f.policy+"/"+f.env, func(t *testing.T) {
			s := only(f.policy, f.env, f.config)
			if f.pass != nil {
				assert.Empty(t, p.Evaluate(f.pass, s, cost.Pack()).Results)
				pass[f.policy] = true
			}
			if f.fail != nil {
				rep := p.Evaluate(f.fail, s, cost.Pack())
				assert.NotEmpty(t, rep.Blocking(), "%+v", rep.Results)
				fail[f.policy] = true
			}
		})
	}
	for _, pol := range cost.Pack().Policies {
		assert.True(t, pass[pol.Name] && fail[pol.Name], "%s needs passing and failing fixtures", pol.Name)
	}
}

// TestStacks_DefaultsPassTheirEnvironmentsCostGuards: the standard
// environments' AWS graphs respect their own cost guards.
func TestStacks_DefaultsPassTheirEnvironmentsCostGuards(t *testing.T) {
	for _, kind := range []stacks.Kind{stacks.Dev, stacks.Staging, stacks.Prod, stacks.Ephemeral} {
		prog, err := web.Definition.Program(web.Environment{Name: string(kind), Kind: kind, Params: web.Params{Target: web.AWS}})
		require.NoError(t, err)
		g, err := mocktest.Run(prog.Run, nil)
		require.NoError(t, err)
		rep := p.Evaluate(g.PolicyResources(), p.Settings{Kind: string(kind), Levels: map[string]p.Enforcement{}}, cost.Pack())
		assert.Empty(t, rep.Results, "%s: %+v", kind, rep.Results)
	}
}

func pvc(storage any) p.Resource {
	return obj(cost.PVC, "claim", map[string]any{"spec": map[string]any{"resources": map[string]any{"requests": map[string]any{"storage": storage}}}})
}

// TestStorageLimits_QuantitiesAreParsedLikeKubernetes: every quantity
// Kubernetes accepts is read at its real size (binary, decimal, exponent
// and fractional forms), so huge claims such as 2Pi or 1Ei are blocked, and
// a size the guard cannot read blocks too, naming the value (fail closed).
func TestStorageLimits_QuantitiesAreParsedLikeKubernetes(t *testing.T) {
	cases := []struct {
		storage any
		env     string
		blocked bool
		want    string // part of the message when blocked
	}{
		{"10Gi", "dev", false, ""},
		{"100Gi", "dev", false, ""},
		{"101Gi", "dev", true, "asks for 101 GiB; dev allows 100 GiB"},
		{"500Ki", "dev", false, ""},
		{"500Mi", "dev", false, ""},
		{"1Ti", "dev", true, "asks for 1024 GiB"},
		{"2Pi", "dev", true, "asks for 2.097152e+06 GiB"},
		{"2Pi", "prod", true, "prod allows 4096 GiB"},
		{"1Ei", "prod", true, "asks for 1.073741824e+09 GiB"},
		{"4Ti", "prod", false, ""},
		{"5Ti", "prod", true, "asks for 5120 GiB"},
		{"20G", "dev", false, ""},
		{"200G", "dev", true, "asks for 186.26"},
		{"1P", "prod", true, "GiB; prod allows 4096 GiB"},
		{"1e11", "dev", false, ""},
		{"1e12", "dev", true, "asks for 931.32"},
		{"0.5Ti", "dev", true, "asks for 512 GiB"},
		{"107374182400", "dev", false, ""}, // exactly 100Gi in bytes
		{"107374182401", "dev", true, "GiB; dev allows 100 GiB"},
		{"lots", "dev", true, `asks for storage "lots", which is not a Kubernetes quantity`},
		{"10 Gi", "dev", true, `storage "10 Gi", which is not a Kubernetes quantity`},
		{"10GB", "prod", true, `storage "10GB", which is not a Kubernetes quantity`},
		{"-1Gi", "prod", true, `storage "-1Gi", which is not a Kubernetes quantity`},
		{"", "dev", true, `storage "", which is not a Kubernetes quantity`},
		{10, "dev", true, "storage 10, which is not a Kubernetes quantity"},
	}
	for _, tc := range cases {
		t.Run(tc.env+"/"+quoteAny(tc.storage), func(t *testing.T) {
			rep := p.Evaluate([]p.Resource{pvc(tc.storage)}, only("storage-limits", tc.env, nil), cost.Pack())
			if !tc.blocked {
				assert.Empty(t, rep.Results, "%+v", rep.Results)
				return
			}
			require.Len(t, rep.Blocking(), 1, "%+v", rep.Results)
			assert.Contains(t, rep.Blocking()[0].Message, tc.want)
			assert.Contains(t, rep.Blocking()[0].Message, "claim")
		})
	}
}

// TestStorageLimits_UnknownSizeIsUnverifiedNotPassed: a size not known until
// the update is reported as unverified, not passed and not blocked.
func TestStorageLimits_UnknownSizeIsUnverifiedNotPassed(t *testing.T) {
	rep := p.Evaluate([]p.Resource{pvc(p.Unknown)}, only("storage-limits", "dev", nil), cost.Pack())
	require.Len(t, rep.Results, 1)
	assert.True(t, rep.Results[0].Unverified)
	assert.True(t, rep.Passed())
}

func quoteAny(v any) string {
	if s, ok := v.(string); ok {
		return "q=" + s
	}
	return "n"
}

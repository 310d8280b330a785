package cost_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/cost"
	"github.com/slipwayhq/slipway/stacks"
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
	s := p.Settings{Environment: env, Levels: map[string]p.Enforcement{}, Overrides: map[string]p.Override{}}
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
		prog, err := stacks.Environment{Name: string(kind), Kind: kind, Target: stacks.AWS}.Program()
		require.NoError(t, err)
		g, err := mocktest.Run(prog.Run, nil)
		require.NoError(t, err)
		rep := p.Evaluate(g.PolicyResources(), p.Settings{Environment: string(kind), Levels: map[string]p.Enforcement{}}, cost.Pack())
		assert.Empty(t, rep.Results, "%s: %+v", kind, rep.Results)
	}
}

// Package mocktest runs Pulumi programs under pulumi.WithMocks and returns
// the registered resource graph, so unit tests (and in-process policy
// evaluation) can assert on types, counts, parents and inputs without an
// engine or a cloud.
package mocktest

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/policypacks"
)

// Resource is one registered resource.
type Resource struct {
	Type   string
	Name   string
	URN    string
	Parent string // URN of the parent, empty for the stack's direct children
	Custom bool
	// Inputs are the resource's inputs as plain Go values (maps, slices,
	// strings, float64, bool); secrets are unwrapped (SecretPaths lists
	// them), and a value not known yet (during a Preview run, an output of
	// another resource) is policypacks.Unknown, as the engine hands it to
	// analyzers.
	Inputs map[string]any
	// SecretPaths are the dotted paths of the inputs that are secret
	// ("stringData" when the whole map is, "data.key" for one entry), sorted.
	SecretPaths []string
	// Protect and RetainOnDelete are the resource options of the same names.
	Protect, RetainOnDelete bool
	// IgnoreChanges is the resource option of the same name.
	IgnoreChanges []string
	// PropertyDependencies maps an input to the URNs its value came from.
	PropertyDependencies map[string][]string

	// raw are the inputs as the engine sees them (unknowns and secrets kept).
	raw resource.PropertyMap
}

// Graph is what a program registered, in registration order.
type Graph struct {
	Resources []Resource
}

// OfType returns the resources of the given type token.
func (g *Graph) OfType(typ string) []Resource {
	var out []Resource
	for _, r := range g.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Count returns the number of resources of the given type token.
func (g *Graph) Count(typ string) int { return len(g.OfType(typ)) }

// Named returns the resource with the given type and logical name.
func (g *Graph) Named(typ, name string) (Resource, bool) {
	for _, r := range g.Resources {
		if r.Type == typ && r.Name == name {
			return r, true
		}
	}
	return Resource{}, false
}

// PolicyResources converts the graph for in-process policy evaluation.
func (g *Graph) PolicyResources() []policypacks.Resource {
	out := make([]policypacks.Resource, 0, len(g.Resources))
	for _, r := range g.Resources {
		out = append(out, policypacks.Resource{URN: r.URN, Type: r.Type, Name: r.Name, Parent: r.Parent,
			Props: policypacks.FromPlain(r.Inputs), PropertyDependencies: r.PropertyDependencies})
	}
	return out
}

// Types returns the distinct type tokens, sorted.
func (g *Graph) Types() []string {
	var out []string
	for _, r := range g.Resources {
		if !slices.Contains(out, r.Type) {
			out = append(out, r.Type)
		}
	}
	slices.Sort(out)
	return out
}

// Mocks implements pulumi.MockResourceMonitor and records every resource.
// Outputs echo the inputs plus an id, an arn for AWS resources, and whatever
// the Outputs hook adds.
type Mocks struct {
	// Outputs, when set, may add outputs for a resource (by type token).
	Outputs func(typ, name string, inputs resource.PropertyMap) resource.PropertyMap
	// Calls, when set, answers provider function calls (invokes).
	Calls func(token string, args resource.PropertyMap) (resource.PropertyMap, error)
	// Project and Stack are the names the program runs under (ctx.Project,
	// ctx.Stack and the URNs); the defaults are the package's Project and
	// Stack.
	Project, Stack string

	mu      sync.Mutex
	graph   Graph
	preview bool
}

// NewResource records the resource and returns its mocked state.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	inputs := args.Inputs
	if rpc := args.RegisterRPC; rpc != nil {
		// The monitor drops unknown values from args.Inputs; read the request
		// again keeping them.
		all, err := plugin.UnmarshalProperties(rpc.GetObject(), plugin.MarshalOptions{
			KeepUnknowns: true, KeepSecrets: true, KeepResources: true})
		if err != nil {
			return "", nil, fmt.Errorf("mocktest: inputs of %s %s: %w", args.TypeToken, args.Name, err)
		}
		inputs = all
	}
	r := Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Inputs: plain(inputs), raw: inputs}
	secretPaths("", resource.NewObjectProperty(inputs), &r.SecretPaths)
	slices.Sort(r.SecretPaths)
	if rpc := args.RegisterRPC; rpc != nil {
		r.Parent = rpc.GetParent()
		r.Protect = rpc.GetProtect()
		r.RetainOnDelete = rpc.GetRetainOnDelete()
		r.IgnoreChanges = rpc.GetIgnoreChanges()
		for k, deps := range rpc.GetPropertyDependencies() {
			if r.PropertyDependencies == nil {
				r.PropertyDependencies = map[string][]string{}
			}
			r.PropertyDependencies[k] = deps.GetUrns()
		}
	}
	r.URN = m.urnOf(r.Parent, args.TypeToken, args.Name)
	m.mu.Lock()
	m.graph.Resources = append(m.graph.Resources, r)
	m.mu.Unlock()

	out := args.Inputs.Copy()
	id := args.Name + "-id"
	if m.preview {
		// As in an engine preview of a create, ids and ARNs are not known yet.
		// (The fake account's other outputs stay: the mock monitor cannot
		// pass an unknown value inside a secret, such as a kubeconfig
		// computed from a cluster's endpoint.)
		id = ""
	} else if strings.HasPrefix(args.TypeToken, "aws:") {
		out["arn"] = resource.NewStringProperty("arn:aws:mock:us-east-1:123456789012:" + args.Name)
		out["id"] = resource.NewStringProperty(id)
	}
	for k, v := range awsOutputs[args.TypeToken] {
		out[resource.PropertyKey(k)] = resource.NewPropertyValue(v)
	}
	if m.Outputs != nil {
		for k, v := range m.Outputs(args.TypeToken, args.Name, args.Inputs) {
			out[k] = v
		}
	}
	return id, out, nil
}

// Call answers an invoke through the Calls hook, else with a fake AWS
// account in us-east-1 for the common lookups, else with its arguments.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	if m.Calls != nil {
		return m.Calls(args.Token, args.Args)
	}
	if out, ok := awsLookups[args.Token]; ok {
		return resource.NewPropertyMapFromMap(out), nil
	}
	return args.Args, nil
}

// awsOutputs are provider-computed outputs the fake account returns.
var awsOutputs = map[string]map[string]any{
	"aws:eks/cluster:Cluster": {
		"endpoint":             "https://ABC.gr7.us-east-1.eks.amazonaws.com",
		"certificateAuthority": map[string]any{"data": "Q0EK"},
		"identities":           []any{map[string]any{"oidcs": []any{map[string]any{"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"}}}},
	},
	"aws:ec2/launchTemplate:LaunchTemplate": {"latestVersion": 1},
}

// awsLookups are the answers of the fake AWS account.
var awsLookups = map[string]map[string]any{
	"aws:index/getAvailabilityZones:getAvailabilityZones": {
		"names":   []any{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"},
		"zoneIds": []any{"use1-az1", "use1-az2", "use1-az3", "use1-az4", "use1-az5", "use1-az6"},
		"id":      "us-east-1",
	},
	"aws:index/getRegion:getRegion":                 {"name": "us-east-1", "id": "us-east-1", "endpoint": "ec2.us-east-1.amazonaws.com"},
	"aws:index/getCallerIdentity:getCallerIdentity": {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/test", "userId": "AIDTEST", "id": "123456789012"},
	"aws:index/getPartition:getPartition":           {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
}

// Graph returns a copy of what has been recorded.
func (m *Mocks) Graph() *Graph {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &Graph{Resources: slices.Clone(m.graph.Resources)}
}

// Run runs program under mocks and returns the recorded graph. The program
// runs as an update (as pulumi.WithMocks runs it: ids and outputs are
// known) unless Preview is passed; Config gives it stack configuration.
// slipwaytest.Mock is Run failing the test on an error, with the same
// default.
func Run(program pulumi.RunFunc, mocks *Mocks, opts ...pulumi.RunOption) (*Graph, error) {
	if mocks == nil {
		mocks = &Mocks{}
	}
	var info pulumi.RunInfo
	for _, o := range opts {
		o(&info)
	}
	mocks.preview = info.DryRun
	if mocks.Project == "" {
		mocks.Project = Project
	}
	if mocks.Stack == "" {
		mocks.Stack = Stack
	}
	err := pulumi.RunErr(program, append([]pulumi.RunOption{pulumi.WithMocks(mocks.Project, mocks.Stack, mocks)}, opts...)...)
	return mocks.Graph(), err
}

// Preview runs the program as in an engine preview: ids and outputs that a
// provider computes are unknown, so inputs computed from them are
// policypacks.Unknown in the graph.
func Preview() pulumi.RunOption { return func(ri *pulumi.RunInfo) { ri.DryRun = true } }

// Config gives the program stack configuration: keys are "namespace:key"
// (for example "slipway:secrets"); the keys listed in secret are secret, as
// config.GetSecret and ctx.IsConfigSecret see them.
func Config(values map[string]string, secret ...string) pulumi.RunOption {
	return func(ri *pulumi.RunInfo) {
		ri.Config = values
		ri.ConfigSecretKeys = secret
	}
}

// urnOf builds the URN the engine would give a resource of the stack.
func (m *Mocks) urnOf(parent, typ, name string) string {
	qualified := typ
	if parent != "" {
		if pt := string(resource.URN(parent).QualifiedType()); pt != "pulumi:pulumi:Stack" {
			qualified = pt + "$" + typ
		}
	}
	return fmt.Sprintf("urn:pulumi:%s::%s::%s::%s", m.Stack, m.Project, qualified, name)
}

// Project and Stack are the names programs run under in Run unless Mocks
// names others.
const (
	Project = "slipway"
	Stack   = "test"
)

// plain converts a property map to plain Go values.
func plain(pm resource.PropertyMap) map[string]any {
	out := make(map[string]any, len(pm))
	for k, v := range pm {
		out[string(k)] = plainValue(v)
	}
	return out
}

// secretPaths appends the dotted paths of the secret values in v.
func secretPaths(path string, v resource.PropertyValue, out *[]string) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch {
	case v.IsSecret():
		*out = append(*out, path)
	case v.IsOutput():
		if o := v.OutputValue(); o.Secret {
			*out = append(*out, path)
		} else {
			secretPaths(path, o.Element, out)
		}
	case v.IsObject():
		for k, e := range v.ObjectValue() {
			secretPaths(join(string(k)), e, out)
		}
	case v.IsArray():
		for i, e := range v.ArrayValue() {
			secretPaths(join(fmt.Sprint(i)), e, out)
		}
	}
}

func plainValue(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plainValue(v.SecretValue().Element)
	case v.IsOutput():
		if o := v.OutputValue(); o.Known {
			return plainValue(o.Element)
		}
		return policypacks.Unknown
	case v.IsComputed():
		return policypacks.Unknown
	case v.IsObject():
		return plain(v.ObjectValue())
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]any, len(arr))
		for i, e := range arr {
			out[i] = plainValue(e)
		}
		return out
	case v.IsResourceReference():
		return v.ResourceReferenceValue().URN
	}
	return v.Mappable()
}

// Dig walks nested inputs: string steps index maps, int steps index lists.
// It returns nil when a step is missing.
func Dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

package slipwaytest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/policypacks"
)

// Graph is the resource graph a program registered under mocks: its
// resources in registration order, with OfType, Named, Count and Types.
type Graph = mocktest.Graph

// Resource is one resource of a Graph: type, name, URN, parent, inputs as
// plain values (an unknown value is policypacks.Unknown) and options.
type Resource = mocktest.Resource

// Mock runs a program under mocks, without an engine, and returns what it
// registered; it fails the test when the program returns an error. The
// program runs as in a preview, so values a provider computes (ids, and
// inputs made from them) are unknown, as policies see them in the engine;
// pass AsUpdate to run it as an update. Under mocks the program's project
// is "slipway" and its stack "test".
func Mock(t testing.TB, run pulumi.RunFunc, opts ...pulumi.RunOption) *Graph {
	t.Helper()
	g, err := MockE(run, opts...)
	if err != nil {
		t.Fatalf("slipwaytest: the program failed under mocks: %v", err)
	}
	return g
}

// MockE is Mock returning the program's error (with what it registered
// before failing) instead of failing the test.
func MockE(run pulumi.RunFunc, opts ...pulumi.RunOption) (*Graph, error) {
	return mocktest.Run(run, nil, append([]pulumi.RunOption{mocktest.Preview()}, opts...)...)
}

// Config gives a mocked program stack configuration: keys are
// "namespace:key" (for example "slipway:secrets"); the keys listed in
// secret are secret.
func Config(values map[string]string, secret ...string) pulumi.RunOption {
	return mocktest.Config(values, secret...)
}

// AsUpdate runs a mocked program as an update instead of a preview: ids and
// the fake AWS account's outputs are known.
func AsUpdate() pulumi.RunOption { return func(ri *pulumi.RunInfo) { ri.DryRun = false } }

// Findings evaluates the packs on the graph in-process under settings and
// returns every finding (blocking, advisory and unverified; see
// policypacks.Finding.Blocking).
func Findings(g *Graph, s policypacks.Settings, packs ...*policypacks.Pack) []policypacks.Finding {
	return policypacks.Evaluate(g.PolicyResources(), s, packs...).Results
}

// AssertCompliant fails the test when the packs, under settings, find
// anything blocking in the graph, listing each blocking finding on a line
// of its own: enforcement, pack/policy, resource type and name, message.
// Invalid settings, and no packs at all, fail the test too.
func AssertCompliant(t testing.TB, g *Graph, s policypacks.Settings, packs ...*policypacks.Pack) {
	t.Helper()
	if len(packs) == 0 {
		t.Fatalf("slipwaytest: AssertCompliant without packs checks nothing; pass them (all.Packs()...)")
		return
	}
	if err := s.Validate(packs...); err != nil {
		t.Fatalf("slipwaytest: AssertCompliant: %v", err)
		return
	}
	var lines []string
	for _, f := range Findings(g, s, packs...) {
		if f.Blocking() {
			lines = append(lines, FormatFinding(f))
		}
	}
	if len(lines) == 0 {
		return
	}
	slices.Sort(lines)
	env := ""
	if s.Environment != "" {
		env = " in a " + s.Environment + " environment"
	}
	t.Errorf("slipwaytest: %d blocking policy finding(s)%s:\n  %s", len(lines), env, strings.Join(lines, "\n  "))
}

// FormatFinding renders a finding on one line:
// "mandatory slipway-kubernetes/image-pinned: kubernetes:apps/v1:Deployment web: <message>".
func FormatFinding(f policypacks.Finding) string {
	level := string(f.Enforcement)
	if f.Unverified {
		level = "unverified"
	}
	where := "the stack"
	if f.URN != "" {
		typ, name := f.Type, f.URN
		if i := strings.LastIndex(name, "::"); i >= 0 {
			name = name[i+2:]
		}
		if typ == "" {
			if parts := strings.Split(f.URN, "::"); len(parts) >= 4 {
				typ = parts[len(parts)-2]
				if i := strings.LastIndex(typ, "$"); i >= 0 {
					typ = typ[i+1:]
				}
			}
		}
		where = typ + " " + name
	}
	return fmt.Sprintf("%s %s/%s: %s: %s", level, f.Pack, f.Policy, where, f.Message)
}

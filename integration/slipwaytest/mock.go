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

// Mock runs a program under mocks, without an engine, and returns what it
// registered (package mocktest's Graph); it fails the test when the program
// returns an error. It is mocktest.Run with the test failing: the program
// runs as an update, as Pulumi's mocks run it, unless mocktest.Preview() is
// passed (values a provider computes, such as ids and the inputs made from
// them, are then unknown, as policies see them in an engine preview);
// mocktest.Config gives it stack configuration. Under mocks the program's
// project is "slipway" and its stack "test".
func Mock(t testing.TB, run pulumi.RunFunc, opts ...pulumi.RunOption) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(run, nil, opts...)
	if err != nil {
		t.Fatalf("slipwaytest: the program failed under mocks: %v", err)
	}
	return g
}

// Findings evaluates the packs on the graph in-process under settings and
// returns every finding (blocking, advisory and unverified; see
// policypacks.Finding.Blocking).
func Findings(g *mocktest.Graph, s policypacks.Settings, packs ...*policypacks.Pack) []policypacks.Finding {
	return policypacks.Evaluate(g.PolicyResources(), s, packs...).Results
}

// AssertCompliant fails the test when the packs, under settings, find
// anything blocking in the graph, listing each blocking finding on a line
// of its own: enforcement, pack/policy, resource type and name, message.
// Invalid settings, and no packs at all, fail the test too.
func AssertCompliant(t testing.TB, g *mocktest.Graph, s policypacks.Settings, packs ...*policypacks.Pack) {
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
	if s.Kind != "" {
		env = " in a " + s.Kind + " environment"
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

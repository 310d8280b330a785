package mocktest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"

	"github.com/slipwayhq/slipway/policypacks"
)

// AnalyzerResources converts the graph to what the engine hands an
// analyzer: the inputs with unknown values and secrets kept.
func (g *Graph) AnalyzerResources() []policyx.AnalyzerResource {
	out := make([]policyx.AnalyzerResource, 0, len(g.Resources))
	for _, r := range g.Resources {
		out = append(out, policyx.AnalyzerResource{Type: r.Type, URN: r.URN, Name: r.Name, Parent: r.Parent,
			Properties: resource.FromResourcePropertyMap(r.raw), PropertyDependencies: r.PropertyDependencies,
			Options: pulumi.ResourceOptions{Protect: r.Protect, RetainOnDelete: r.RetainOnDelete, IgnoreChanges: r.IgnoreChanges}})
	}
	return out
}

// Finding levels in the lines that InProcessFindings and EngineFindings return.
const (
	// Blocking findings stop a deployment (mandatory, or remediate).
	Blocking = "blocking"
	// Advisory findings are reported and do not block.
	Advisory = "advisory"
	// Unverified findings are checks that could not run on unknown values.
	Unverified = "unverified"
)

// InProcessFindings evaluates the graph in-process (policypacks.Evaluate)
// and returns each finding as a line "policy urn level", sorted, where level
// is Blocking, Advisory or Unverified.
func (g *Graph) InProcessFindings(s policypacks.Settings, packs ...*policypacks.Pack) []string {
	rep := policypacks.Evaluate(g.PolicyResources(), s, packs...)
	blocking := rep.Blocking()
	var out []string
	for _, r := range rep.Results {
		level := Advisory
		switch {
		case r.Unverified:
			level = Unverified
		case slices.ContainsFunc(blocking, func(b policypacks.Finding) bool {
			return b.Policy == r.Policy && b.URN == r.URN && b.Message == r.Message
		}):
			level = Blocking
		}
		out = append(out, r.Policy+" "+r.URN+" "+level)
	}
	slices.Sort(out)
	return out
}

// EngineFindings runs the packs through the analyzer the engine runs
// (policypacks.Analyzer), in-process and as the engine calls it: each
// resource policy per resource (without property dependencies, which the
// engine's per-resource analysis does not pass), each stack policy over every
// resource. It returns each violation as a line "policy urn level", sorted:
// Blocking for the engine's mandatory level, Advisory, or Unverified for a
// check the analyzer's UnverifiedPolicy or UnverifiedStackPolicy reported
// for the named policy.
func (g *Graph) EngineFindings(s policypacks.Settings, packs ...*policypacks.Pack) ([]string, error) {
	pack, err := policypacks.Analyzer(s, packs...)
	if err != nil {
		return nil, err
	}
	resources := g.AnalyzerResources()
	var out []string
	for _, pol := range pack.Policies() {
		level := pol.EnforcementLevel()
		if level == policyx.EnforcementLevelDisabled {
			continue
		}
		report := &manager{report: func(msg, urn string) {
			name, lvl := pol.Name(), Advisory
			switch {
			case policypacks.IsUnverified(name):
				name, _, _ = strings.Cut(msg, ": ")
				lvl = Unverified
			case level == policyx.EnforcementLevelMandatory:
				lvl = Blocking
			}
			out = append(out, name+" "+urn+" "+lvl)
		}}
		switch p := pol.(type) {
		case policyx.ResourceValidationPolicy:
			for _, r := range resources {
				r := r
				r.PropertyDependencies = nil
				cur := r.URN
				report.urn = cur
				if err := p.Validate(context.Background(), policyx.ResourceValidationArgs{Manager: report, Resource: r}); err != nil {
					return nil, fmt.Errorf("mocktest: %s on %s: %w", pol.Name(), r.URN, err)
				}
			}
		case policyx.StackValidationPolicy:
			report.urn = ""
			if err := p.Validate(context.Background(), policyx.StackValidationArgs{Manager: report, Resources: resources}); err != nil {
				return nil, fmt.Errorf("mocktest: %s: %w", pol.Name(), err)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// manager records violations as the engine does: a resource policy that
// names no URN reports on the resource under analysis.
type manager struct {
	urn    string
	report func(msg, urn string)
}

// ReportViolation implements policyx.PolicyManager.
func (m *manager) ReportViolation(message, urn string) {
	if urn == "" {
		urn = m.urn
	}
	m.report(message, urn)
}

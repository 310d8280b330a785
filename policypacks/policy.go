// Package policypacks is Slipway's policy model: policies with a name,
// severity, enforcement level, the resource types they judge, the compliance
// controls they map to, a configuration schema and a validate function.
//
// One policy value runs two ways:
//   - inside the Pulumi engine, through policyx (Analyzer and Serve), where a
//     mandatory violation blocks preview and up;
//   - in-process (Pack.Evaluate) over any set of resources: a mocked graph in
//     a unit test, the resources of a preview, or a stack's state.
//
// Policies read properties through Props, which tells known values from
// values the engine does not know yet (during preview); an unknown value never
// crashes a policy and never counts as a pass without saying so.
package policypacks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Severity ranks how bad a violation is.
type Severity string

// Severities.
const (
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

// Enforcement is what a violation does.
type Enforcement string

// Enforcement levels.
const (
	// Advisory violations are reported and do not block.
	Advisory Enforcement = "advisory"
	// Mandatory violations block preview and up.
	Mandatory Enforcement = "mandatory"
	// Remediate violations block like mandatory ones, and a policy's
	// Remediate function proposes the fix (Finding.Remediation) for the
	// program's author to apply. Slipway never rewrites a program's resources
	// itself, so a violation blocks until the program is fixed, alike in the
	// engine and in-process evaluation.
	Remediate Enforcement = "remediate"
	// Disabled policies do not run.
	Disabled Enforcement = "disabled"
)

// Valid reports whether e is a known level.
func (e Enforcement) Valid() bool {
	switch e {
	case Advisory, Mandatory, Remediate, Disabled:
		return true
	}
	return false
}

// Frameworks that controls refer to.
const (
	CIS    = "CIS AWS Foundations v3.0"
	CISK8s = "CIS Kubernetes v1.9"
	PCI    = "PCI-DSS v4.0"
	HIPAA  = "HIPAA Security Rule"
)

// Control is one compliance control a policy helps satisfy.
type Control struct {
	Framework string `json:"framework"`
	ID        string `json:"id"`
}

func (c Control) String() string { return c.Framework + " " + c.ID }

// Resource is what a policy judges: one resource of a program or a stack.
type Resource struct {
	URN  string `json:"urn"`
	Type string `json:"type"`
	Name string `json:"name"`
	// Parent is the parent's URN.
	Parent string `json:"parent,omitempty"`
	// Props are the resource's inputs (plain values; Unknown where the engine
	// does not know them yet).
	Props Props `json:"-"`
	// PropertyDependencies maps an input to the URNs of the resources its value came from.
	PropertyDependencies map[string][]string `json:"-"`
}

// DependsOn reports whether the input prop was computed from resource urn.
func (r Resource) DependsOn(prop, urn string) bool {
	return slices.Contains(r.PropertyDependencies[prop], urn)
}

// Config is a policy's effective configuration: defaults merged with overrides.
type Config map[string]any

// Strings returns a string-list setting.
func (c Config) Strings(key string) []string {
	switch v := c[key].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Int returns a numeric setting.
func (c Config) Int(key string) int {
	switch v := c[key].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}

// Bool returns a boolean setting.
func (c Config) Bool(key string) bool { b, _ := c[key].(bool); return b }

// Map returns a map setting.
func (c Config) Map(key string) map[string]any { m, _ := c[key].(map[string]any); return m }

// Args is what a validation sees.
type Args struct {
	Config Config
	// Kind is the kind of environment under evaluation (dev, prod, ...), when known.
	Kind    string
	report  func(urn, message string)
	unknown func(urn, message string)
}

// Report records a violation for urn (a resource policy may pass "" for its resource).
func (a *Args) Report(urn, format string, args ...any) { a.report(urn, fmt.Sprintf(format, args...)) }

// Unverifiable records that a check could not run because a value is not
// known yet (during preview). It is reported, never counted as a pass.
func (a *Args) Unverifiable(urn, format string, args ...any) {
	a.unknown(urn, fmt.Sprintf(format, args...))
}

// Policy is one rule.
type Policy struct {
	Name        string
	Description string
	Severity    Severity
	// Enforcement is the default level; Settings can change it per environment and per policy.
	Enforcement Enforcement
	// Types are the resource type tokens a resource policy applies to (empty for stack policies).
	Types    []string
	Controls []Control
	// Config holds default settings; ConfigSchema describes them (JSON schema per property).
	Config       Config
	ConfigSchema map[string]map[string]any
	// Validate judges one resource of a matching type.
	Validate func(r Resource, a *Args)
	// ValidateStack judges all resources at once.
	ValidateStack func(rs []Resource, a *Args)
	// Remediate, when set, returns fixed properties for a violating resource
	// (reported as Finding.Remediation, a proposal; the violation still
	// blocks); it runs only in-process and only at the Remediate level.
	Remediate func(r Resource, c Config) map[string]any
}

// AppliesTo reports whether a resource policy judges resources of type typ.
func (p *Policy) AppliesTo(typ string) bool { return slices.Contains(p.Types, typ) }

// Pack is a named set of policies.
type Pack struct {
	Name     string
	Version  string
	Policies []*Policy
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)

// Validate checks that the pack is well formed (names, levels, functions).
func (p *Pack) Validate() error {
	var errs []error
	if !nameRE.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("policypacks: pack name %q must be lower-case letters, digits and '-'", p.Name))
	}
	seen := map[string]bool{}
	for i, pol := range p.Policies {
		switch {
		case !nameRE.MatchString(pol.Name) || pol.Name == "all":
			errs = append(errs, fmt.Errorf("policypacks: %s: Policies[%d].Name %q is invalid", p.Name, i, pol.Name))
		case seen[pol.Name]:
			errs = append(errs, fmt.Errorf("policypacks: %s: policy %q is defined twice", p.Name, pol.Name))
		}
		seen[pol.Name] = true
		if !pol.Enforcement.Valid() {
			errs = append(errs, fmt.Errorf("policypacks: %s/%s: Enforcement %q is not a level", p.Name, pol.Name, pol.Enforcement))
		}
		if (pol.Validate == nil) == (pol.ValidateStack == nil) {
			errs = append(errs, fmt.Errorf("policypacks: %s/%s: set exactly one of Validate and ValidateStack", p.Name, pol.Name))
		}
		if pol.Validate != nil && len(pol.Types) == 0 {
			errs = append(errs, fmt.Errorf("policypacks: %s/%s: a resource policy needs Types", p.Name, pol.Name))
		}
		if pol.Description == "" || pol.Severity == "" {
			errs = append(errs, fmt.Errorf("policypacks: %s/%s: Description and Severity are required", p.Name, pol.Name))
		}
	}
	return errors.Join(errs...)
}

// Policy returns the named policy.
func (p *Pack) Policy(name string) (*Policy, bool) {
	for _, pol := range p.Policies {
		if pol.Name == name {
			return pol, true
		}
	}
	return nil, false
}

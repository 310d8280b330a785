package policypacks

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// DefaultLevels are the environment-wide enforcement levels: advisory where
// people experiment, the policies' own levels where it matters.
var DefaultLevels = map[string]Enforcement{
	"dev": Advisory, "qa": Advisory, "ephemeral": Advisory, "staging": Mandatory, "prod": Mandatory,
}

// Override changes one policy's level or configuration.
type Override struct {
	Enforcement Enforcement    `json:"enforcement,omitempty"`
	Config      map[string]any `json:"config,omitempty"`
}

// Settings decide how policies run for one environment.
type Settings struct {
	// Kind is the environment kind under evaluation (dev, qa, staging, prod, ephemeral).
	Kind string `json:"kind,omitempty"`
	// Levels map environment kinds to an environment-wide level (default
	// DefaultLevels). Advisory turns mandatory policies advisory; Disabled
	// turns everything off; Mandatory keeps each policy's own level.
	Levels map[string]Enforcement `json:"levels,omitempty"`
	// Overrides are per policy name and win over everything else.
	Overrides map[string]Override `json:"overrides,omitempty"`
}

// Validate checks levels and overrides against the packs.
func (s Settings) Validate(packs ...*Pack) error {
	var errs []string
	for env, l := range s.Levels {
		if !l.Valid() {
			errs = append(errs, fmt.Sprintf("Settings.Levels[%q] %q is not a level; use advisory, mandatory, remediate or disabled", env, l))
		}
	}
	for name, o := range s.Overrides {
		found := false
		for _, p := range packs {
			if _, ok := p.Policy(name); ok {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("Settings.Overrides[%q] names no policy of the packs in use", name))
		}
		if o.Enforcement != "" && !o.Enforcement.Valid() {
			errs = append(errs, fmt.Sprintf("Settings.Overrides[%q].Enforcement %q is not a level", name, o.Enforcement))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return fmt.Errorf("policypacks: %s", strings.Join(errs, "; "))
}

// Effective returns a policy's level and configuration under these settings.
func (s Settings) Effective(p *Policy) (Enforcement, Config) {
	level := p.Enforcement
	levels := s.Levels
	if levels == nil {
		levels = DefaultLevels
	}
	switch levels[s.Kind] {
	case Advisory:
		if level == Mandatory || level == Remediate {
			level = Advisory
		}
	case Disabled:
		level = Disabled
	}
	cfg := Config{}
	maps.Copy(cfg, p.Config)
	if o, ok := s.Overrides[p.Name]; ok {
		if o.Enforcement != "" {
			level = o.Enforcement
		}
		maps.Copy(cfg, o.Config)
	}
	return level, cfg
}

// Finding is one policy finding: a violation (or a check that could not
// run) of one policy on one resource, or on the stack (URN empty). The
// engine's policy events and the in-process evaluation (Evaluate) report
// the same type.
type Finding struct {
	Pack        string      `json:"pack"`
	Policy      string      `json:"policy"`
	URN         string      `json:"urn"`
	Type        string      `json:"type,omitempty"`
	Severity    Severity    `json:"severity"`
	Enforcement Enforcement `json:"enforcement"`
	Message     string      `json:"message"`
	Controls    []Control   `json:"controls,omitempty"`
	// Unverified marks a check that could not run because a value was unknown.
	Unverified bool `json:"unverified,omitempty"`
	// Remediation holds the fixed properties a remediation policy proposes;
	// it is a proposal for the program's author and does not unblock.
	Remediation map[string]any `json:"remediation,omitempty"`
}

// Blocking reports whether the finding stops a deployment: it is verified
// (not Unverified) and mandatory or remediate, as the engine blocks it. A
// proposed Remediation does not unblock: nothing has applied it.
func (f Finding) Blocking() bool {
	return !f.Unverified && (f.Enforcement == Mandatory || f.Enforcement == Remediate)
}

// PolicyRun records one policy that ran and its outcome, for compliance summaries.
type PolicyRun struct {
	Pack        string      `json:"pack"`
	Policy      string      `json:"policy"`
	Description string      `json:"description"`
	Severity    Severity    `json:"severity"`
	Enforcement Enforcement `json:"enforcement"`
	Controls    []Control   `json:"controls,omitempty"`
	Violations  int         `json:"violations"`
	Unverified  int         `json:"unverified"`
}

// Report is the outcome of an evaluation.
type Report struct {
	// Kind is the environment kind whose enforcement levels applied (Settings.Kind).
	Kind      string      `json:"kind,omitempty"`
	Packs     []string    `json:"packs"`
	Resources int         `json:"resources"`
	Results   []Finding   `json:"results"`
	Policies  []PolicyRun `json:"policies"`
}

// Blocking returns the violations that stop a deployment: verified and
// mandatory or remediate, as the engine blocks them. A proposed
// Remediation does not unblock: nothing has applied it.
func (r *Report) Blocking() []Finding {
	var out []Finding
	for _, res := range r.Results {
		if res.Blocking() {
			out = append(out, res)
		}
	}
	return out
}

// Violations returns every verified finding, blocking or not.
func (r *Report) Violations() []Finding {
	var out []Finding
	for _, res := range r.Results {
		if !res.Unverified {
			out = append(out, res)
		}
	}
	return out
}

// Passed reports whether nothing blocks.
func (r *Report) Passed() bool { return len(r.Blocking()) == 0 }

// compiled is a pack prepared for one evaluation.
type compiled struct {
	pack   *Pack
	byType map[string][]*Policy
	stack  []*Policy
	levels map[string]Enforcement
	config map[string]Config
}

func compile(p *Pack, s Settings) *compiled {
	c := &compiled{pack: p, byType: map[string][]*Policy{}, levels: map[string]Enforcement{}, config: map[string]Config{}}
	for _, pol := range p.Policies {
		level, cfg := s.Effective(pol)
		if level == Disabled {
			continue
		}
		c.levels[pol.Name], c.config[pol.Name] = level, cfg
		if pol.ValidateStack != nil {
			c.stack = append(c.stack, pol)
			continue
		}
		for _, t := range pol.Types {
			c.byType[t] = append(c.byType[t], pol)
		}
	}
	return c
}

// Evaluate runs packs over resources in-process with the given settings.
func Evaluate(resources []Resource, s Settings, packs ...*Pack) *Report {
	rep := &Report{Kind: s.Kind, Resources: len(resources)}
	for _, p := range packs {
		rep.Packs = append(rep.Packs, p.Name)
		c := compile(p, s)
		runs := map[string]*PolicyRun{}
		run := func(pol *Policy) *PolicyRun {
			if r, ok := runs[pol.Name]; ok {
				return r
			}
			r := &PolicyRun{Pack: p.Name, Policy: pol.Name, Description: pol.Description, Severity: pol.Severity,
				Enforcement: c.levels[pol.Name], Controls: pol.Controls}
			runs[pol.Name] = r
			return r
		}
		for _, pol := range p.Policies {
			if _, on := c.levels[pol.Name]; on {
				run(pol)
			}
		}
		args := func(pol *Policy, defaultURN, typ string, r *Resource) *Args {
			pr := run(pol)
			add := func(urn, msg string, unverified bool) {
				if urn == "" {
					urn = defaultURN
				}
				res := Finding{Pack: p.Name, Policy: pol.Name, URN: urn, Type: typ, Severity: pol.Severity,
					Enforcement: c.levels[pol.Name], Message: msg, Controls: pol.Controls, Unverified: unverified}
				if unverified {
					pr.Unverified++
				} else {
					pr.Violations++
					if res.Enforcement == Remediate && pol.Remediate != nil && r != nil {
						res.Remediation = pol.Remediate(*r, c.config[pol.Name])
					}
				}
				rep.Results = append(rep.Results, res)
			}
			return &Args{Config: c.config[pol.Name], Kind: s.Kind,
				report:  func(urn, m string) { add(urn, m, false) },
				unknown: func(urn, m string) { add(urn, m, true) }}
		}
		for i := range resources {
			r := &resources[i]
			for _, pol := range c.byType[r.Type] {
				pol.Validate(*r, args(pol, r.URN, r.Type, r))
			}
		}
		for _, pol := range c.stack {
			pol.ValidateStack(resources, args(pol, "", "", nil))
		}
		for _, pol := range p.Policies {
			if r, ok := runs[pol.Name]; ok {
				rep.Policies = append(rep.Policies, *r)
			}
		}
	}
	slices.SortStableFunc(rep.Results, func(a, b Finding) int { return strings.Compare(a.Pack+a.Policy+a.URN, b.Pack+b.Policy+b.URN) })
	return rep
}

// Check reports a violation of r unless ok, or an unverifiable check when
// the value behind it is not known yet.
func (a *Args) Check(r Resource, st State, ok bool, format string, args ...any) {
	switch {
	case st == Unknowable:
		a.Unverifiable(r.URN, "%s (the value is not known until update)", fmt.Sprintf(format, args...))
	case !ok:
		a.Report(r.URN, format, args...)
	}
}

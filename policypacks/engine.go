package policypacks

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// AnalyzerBinary is the name of the analyzer executable in a pack
// directory. The engine (v3.274) runs a policy pack given as the path of an
// executable directly as an analyzer plugin; a pack directory holds a link of
// this name to a binary that serves Slipway's packs (see ServeIfAnalyzer).
const AnalyzerBinary = "pulumi-analyzer-policy-slipway"

// ConfigFile is the file in a pack directory that says which packs the
// analyzer serves and with which settings.
const ConfigFile = "slipway-policy.json"

// DirConfig is the content of ConfigFile.
type DirConfig struct {
	Packs    []string `json:"packs"`
	Settings Settings `json:"settings"`
}

// WriteDir writes a policy pack directory for the engine: ConfigFile naming
// the packs and settings, and a link named AnalyzerBinary to analyzer, a
// binary that serves the packs (it calls ServeIfAnalyzer first thing). Pass
// Entry(dir) to the engine as the policy pack.
func WriteDir(dir, analyzer string, s Settings, packs ...*Pack) error {
	if len(packs) == 0 {
		return fmt.Errorf("policypacks: WriteDir needs at least one pack")
	}
	if err := s.Validate(packs...); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(DirConfig{Packs: packNames(packs), Settings: s}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644); err != nil {
		return err
	}
	return LinkAnalyzer(dir, analyzer)
}

// LinkAnalyzer points dir's AnalyzerBinary at analyzer (an absolute path is
// recorded), replacing an older link.
func LinkAnalyzer(dir, analyzer string) error {
	abs, err := filepath.Abs(analyzer)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("policypacks: analyzer %q is not an executable file", analyzer)
	}
	link := Entry(dir)
	if cur, err := os.Readlink(link); err == nil && cur == abs {
		return nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(abs, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// Entry returns the path to give the engine for the pack directory dir.
func Entry(dir string) string { return filepath.Join(dir, AnalyzerBinary) }

func packNames(packs []*Pack) []string {
	out := make([]string, len(packs))
	for i, p := range packs {
		out[i] = p.Name
	}
	return out
}

// ServeIfAnalyzer serves the packs configured in the pack directory (the
// directory of the AnalyzerBinary link it was started through) over the
// analyzer protocol and exits, when the running binary was started as
// AnalyzerBinary; otherwise it returns at once. Call it first thing in main
// (or TestMain) of a binary that should double as the analyzer.
func ServeIfAnalyzer(available ...*Pack) {
	if filepath.Base(os.Args[0]) != AnalyzerBinary {
		servedMu.Lock()
		served = slices.Clone(available)
		servedMu.Unlock()
		analyzerReady.Store(true)
		return
	}
	if err := Serve(filepath.Dir(os.Args[0]), available...); err != nil {
		fmt.Fprintln(os.Stderr, "slipway analyzer:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// served are the packs the running binary serves as its analyzer (what it
// passed to ServeIfAnalyzer), for Attribute.
var (
	servedMu sync.Mutex
	served   []*Pack
)

// EnginePack is the name the engine gives every finding of Slipway's
// analyzer: it serves all the packs of a directory as one policy pack.
const EnginePack = "slipway"

// Attribute gives a finding the engine reported under EnginePack the name
// of the Slipway pack its policy belongs to (policy names are unique
// across packs), with the policy's severity and controls, so a finding
// reads the same whether the engine or Evaluate found it. A finding of
// another analyzer, or of a policy this binary does not serve, is
// returned as it is.
func Attribute(f Finding) Finding {
	if f.Pack != EnginePack {
		return f
	}
	servedMu.Lock()
	packs := served
	servedMu.Unlock()
	for _, pk := range packs {
		if pol, ok := pk.Policy(f.Policy); ok {
			f.Pack = pk.Name
			if f.Severity == "" {
				f.Severity = pol.Severity
			}
			if len(f.Controls) == 0 {
				f.Controls = slices.Clone(pol.Controls)
			}
			return f
		}
	}
	return f
}

// analyzerReady records that this process called ServeIfAnalyzer, so it can
// safely double as the engine's analyzer plugin.
var analyzerReady atomic.Bool

// AnalyzerReady reports whether the running binary called ServeIfAnalyzer
// (directly or through policypacks/all) before now. A binary that did not
// would run its whole main when the engine starts it as a policy plugin.
func AnalyzerReady() bool { return analyzerReady.Load() }

// Serve runs the analyzer for the pack directory dir until the engine stops it.
func Serve(dir string, available ...*Pack) error {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fmt.Errorf("reading %s: %w", ConfigFile, err)
	}
	var cfg DirConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", ConfigFile, err)
	}
	var packs []*Pack
	for _, name := range cfg.Packs {
		i := slices.IndexFunc(available, func(p *Pack) bool { return p.Name == name })
		if i < 0 {
			return fmt.Errorf("%s names pack %q, which this analyzer does not have (it has %v)", ConfigFile, name, packNames(available))
		}
		packs = append(packs, available[i])
	}
	return policyx.Main(func(*pulumi.Context) (policyx.PolicyPack, error) { return Analyzer(cfg.Settings, packs...) })
}

var levels = map[Enforcement]policyx.EnforcementLevel{
	Advisory: policyx.EnforcementLevelAdvisory, Mandatory: policyx.EnforcementLevelMandatory,
	Remediate: policyx.EnforcementLevelMandatory, Disabled: policyx.EnforcementLevelDisabled,
}

// UnverifiedPolicy is the advisory policy through which the engine reports
// resource policies' checks that could not run because values were unknown;
// UnverifiedStackPolicy does the same for stack policies. Each finding's
// message starts with the name of the policy whose check could not run.
const (
	UnverifiedPolicy      = "slipway-unverified"
	UnverifiedStackPolicy = "slipway-unverified-stack"
)

// IsUnverified reports whether an engine finding of the named policy is an
// unverifiable check (UnverifiedPolicy or UnverifiedStackPolicy) rather than
// a violation.
func IsUnverified(policy string) bool {
	return policy == UnverifiedPolicy || policy == UnverifiedStackPolicy
}

// Analyzer builds the policyx pack that runs packs inside the engine with the
// given settings. Each policy keeps its name; enforcement comes from the
// settings (policyx ignores pack-level enforcement). The Remediate level is
// the engine's mandatory level: remediation is not offered to the engine
// (policyx would run it at every level), so a violation blocks there as it
// does in-process (see Remediate); remediation proposals come from in-process
// evaluation. Checks that could not run on unknown values are reported,
// advisory, through UnverifiedPolicy and UnverifiedStackPolicy, as
// in-process evaluation reports them as unverified.
func Analyzer(s Settings, packs ...*Pack) (policyx.PolicyPack, error) {
	var policies []policyx.Policy
	seen := map[string]bool{}
	var resourcePolicies, stackPolicies []*Policy
	cfgs := map[string]Config{}
	for _, p := range packs {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		for _, pol := range p.Policies {
			if seen[pol.Name] {
				return nil, fmt.Errorf("policypacks: policy %q is in two packs; an analyzer needs unique names", pol.Name)
			}
			seen[pol.Name] = true
			level, cfg := s.Effective(pol)
			cfgs[pol.Name] = cfg
			var schema *policyx.ConfigSchema
			if len(pol.ConfigSchema) > 0 {
				schema = &policyx.ConfigSchema{Properties: pol.ConfigSchema}
			}
			pol := pol
			if pol.Validate != nil {
				resourcePolicies = append(resourcePolicies, pol)
				policies = append(policies, policyx.NewResourceValidationPolicy(pol.Name, policyx.ResourceValidationPolicyArgs{
					Description: pol.Description, EnforcementLevel: levels[level], ConfigSchema: schema,
					ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
						if !pol.AppliesTo(args.Resource.Type) {
							return nil
						}
						a := &Args{Config: merge(cfg, args.Config), Kind: s.Kind,
							report:  func(urn, m string) { args.Manager.ReportViolation(m, urn) },
							unknown: func(string, string) {}}
						pol.Validate(fromAnalyzer(args.Resource), a)
						return nil
					},
				}))
				continue
			}
			stackPolicies = append(stackPolicies, pol)
			policies = append(policies, policyx.NewStackValidationPolicy(pol.Name, policyx.StackValidationPolicyArgs{
				Description: pol.Description, EnforcementLevel: levels[level], ConfigSchema: schema,
				ValidateStack: func(_ context.Context, args policyx.StackValidationArgs) error {
					rs := make([]Resource, len(args.Resources))
					for i, r := range args.Resources {
						rs[i] = fromAnalyzer(r)
					}
					a := &Args{Config: cfg, Kind: s.Kind,
						report:  func(urn, m string) { args.Manager.ReportViolation(m, urn) },
						unknown: func(string, string) {}}
					pol.ValidateStack(rs, a)
					return nil
				},
			}))
		}
	}
	// Unknown values never pass silently: re-run the resource policies and
	// report every check that could not run, as advisory.
	policies = append(policies, policyx.NewResourceValidationPolicy(UnverifiedPolicy, policyx.ResourceValidationPolicyArgs{
		Description: "Checks that could not run because values are not known until update", EnforcementLevel: policyx.EnforcementLevelAdvisory,
		ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
			if !args.Resource.Properties.HasComputed() {
				return nil
			}
			r := fromAnalyzer(args.Resource)
			for _, pol := range resourcePolicies {
				if level, _ := s.Effective(pol); level == Disabled || !pol.AppliesTo(r.Type) {
					continue
				}
				pol.Validate(r, &Args{Config: cfgs[pol.Name], Kind: s.Kind,
					report:  func(string, string) {},
					unknown: func(urn, m string) { args.Manager.ReportViolation(pol.Name+": "+m, urn) }})
			}
			return nil
		},
	}))
	policies = append(policies, policyx.NewStackValidationPolicy(UnverifiedStackPolicy, policyx.StackValidationPolicyArgs{
		Description: "Stack checks that could not run because values are not known until update", EnforcementLevel: policyx.EnforcementLevelAdvisory,
		ValidateStack: func(_ context.Context, args policyx.StackValidationArgs) error {
			var rs []Resource
			for _, pol := range stackPolicies {
				if level, _ := s.Effective(pol); level == Disabled {
					continue
				}
				if rs == nil {
					rs = make([]Resource, len(args.Resources))
					for i, r := range args.Resources {
						rs[i] = fromAnalyzer(r)
					}
				}
				pol.ValidateStack(rs, &Args{Config: cfgs[pol.Name], Kind: s.Kind,
					report:  func(string, string) {},
					unknown: func(urn, m string) { args.Manager.ReportViolation(pol.Name+": "+m, urn) }})
			}
			return nil
		},
	}))
	return policyx.NewPolicyPack(EnginePack, semver.MustParse("0.1.0"), policyx.EnforcementLevelAdvisory, policies)
}

func merge(base Config, over map[string]any) Config {
	if len(over) == 0 {
		return base
	}
	out := Config{}
	maps.Copy(out, base)
	for k, v := range over {
		if k != "enforcementLevel" {
			out[k] = v
		}
	}
	return out
}

func fromAnalyzer(r policyx.AnalyzerResource) Resource {
	return Resource{URN: r.URN, Type: r.Type, Name: r.Name, Parent: r.Parent,
		Props: FromPropertyMap(r.Properties), PropertyDependencies: r.PropertyDependencies}
}

package stacks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/outcome"
)

// Definition declares a program once, with typed parameters P; every
// environment of it is an Env[P]. The zero fields of an environment's
// Params are filled from Defaults[kind], then Complete runs, then Check
// validates (common checks, then Validate) before any engine run.
//
// Every program a definition returns force-applies the Kubernetes objects
// it registers (the "pulumi.com/patchForce" annotation), so Slipway's
// desired state wins over out-of-band edits when drift is repaired.
type Definition[P any] struct {
	// Name names the definition on a command line (--definition), a lower-case
	// DNS label such as "web".
	Name string
	// Project is the Pulumi project of every environment's stack.
	Project string
	// Description is one line of help.
	Description string
	// Defaults are the parameters per kind: each zero field of an
	// environment's Params is set to a copy of the kind's value, recursing
	// into structs; maps and slices are filled only when nil (never merged).
	Defaults map[Kind]P
	// KindOf, when set, maps environment names that are not kinds to their
	// kinds, e.g. "production" and "prod-eu" to Prod (second result true
	// when it maps the name). A name it does not map, and that is not a
	// kind, needs an explicit kind (see KindError).
	KindOf func(name string) (Kind, bool)
	// Complete, when set, computes what the defaults cannot (e.g. a
	// namespace from the environment's name). It runs after the defaults.
	Complete func(*Env[P])
	// Validate, when set, checks an environment after defaults and
	// Complete; its errors (errors.Join them, see Errorf) name the fields,
	// e.g. "Params.App.Replicas", and the fix.
	Validate func(Env[P]) error
	// Run is the Pulumi program of an environment (defaulted and checked).
	// It reads Env.Secrets with Secrets.
	Run func(ctx *pulumi.Context, env Env[P]) error
	// Plugins, when set, lists the resource plugins an environment's
	// program needs (e.g. automation.KubernetesPlugin).
	Plugins func(Env[P]) []automation.Plugin
	// Flags are command-line shorthands for parameters.
	Flags []Flag
	// Canary, when set, lets an environment roll out in steps (a canary,
	// see automation.Engine.Rollout and CanaryAt): it checks that next (the
	// release rolled out, defaulted and checked) can run its canary at
	// weight percent of the traffic beside stable (the last good release,
	// defaulted and checked, which keeps serving the rest) and returns the
	// program that does. Its errors name the fields and the fix, as
	// Validate's do. A definition without it cannot roll out.
	Canary func(next, stable Env[P], weight int) (func(ctx *pulumi.Context) error, error)
}

// Env returns an environment of the given name and kind with its defaults.
func (d *Definition[P]) Env(name string, kind Kind) Env[P] {
	return d.WithDefaults(Env[P]{Name: name, Kind: kind})
}

// KindFor returns the kind of an environment of that name given none: the
// definition's KindOf mapping, then the name when it is a kind; any other
// name gets a *KindError (Builder).
func (d *Definition[P]) KindFor(name string) (Kind, error) {
	if d.KindOf != nil {
		if k, ok := d.KindOf(name); ok {
			if !k.Valid() {
				return "", Errorf("KindOf", "maps %q to %q, which is not a kind; use dev, qa, staging, prod or ephemeral", name, k)
			}
			return k, nil
		}
	}
	return KindOf(name)
}

// WithDefaults returns a copy of e (sharing no map with it) with its kind
// resolved (KindFor; left empty when it cannot be, which Check refuses),
// its zero parameters filled from the kind's defaults, then Complete
// applied.
func (d *Definition[P]) WithDefaults(e Env[P]) Env[P] {
	if e.Kind == "" {
		e.Kind, _ = d.KindFor(e.Name)
	}
	e.Params = clone(e.Params)
	e.Secrets = maps.Clone(e.Secrets)
	if def, ok := d.Defaults[e.Kind]; ok {
		fillZero(reflect.ValueOf(&e.Params).Elem(), reflect.ValueOf(&def).Elem())
	}
	if d.Complete != nil {
		d.Complete(&e)
	}
	return e
}

// Check validates e (as given; defaults are applied first) and the
// definition itself, and returns every problem at once as *InvalidError.
// It reads only the kubeconfig file; it runs before any engine run.
func (d *Definition[P]) Check(e Env[P]) error {
	errs := d.checkDefinition()
	nameOK := false
	switch {
	case e.Name == "":
		errs = append(errs, Errorf("Name", "is empty; set it to a DNS label such as \"dev\" or \"pr-42\""))
	case len(e.Name) > 40 || !dnsLabel.MatchString(e.Name):
		errs = append(errs, Errorf("Name", "%q must be a lower-case DNS label of at most 40 characters (a-z, 0-9, '-'), e.g. \"pr-42\"", e.Name))
	default:
		nameOK = true
	}
	if e.Tenant != "" && (len(e.Tenant) > 63 || !dnsLabel.MatchString(e.Tenant)) {
		errs = append(errs, Errorf("Tenant", "%q must be a lower-case DNS label of at most 63 characters (a Kubernetes namespace name)", e.Tenant))
	} else if nameOK && len(e.Stack()) > 100 {
		errs = append(errs, Errorf("Name", "%q in tenant %q makes the stack name %q longer than 100 characters; use a shorter name", e.Name, e.Tenant, e.Stack()))
	}
	if e.Kind != "" && !e.Kind.Valid() {
		errs = append(errs, Errorf("Kind", "%q is not a kind; use dev, qa, staging, prod or ephemeral", e.Kind))
	}
	kindKnown := e.Kind == "" || e.Kind.Valid()
	if e.Kind == "" && nameOK {
		if _, err := d.KindFor(e.Name); err != nil {
			errs, kindKnown = append(errs, &FieldError{Field: "Kind", Err: err}), false
		}
	}
	if e.Kubeconfig != "" {
		if fi, err := os.Stat(e.Kubeconfig); err != nil || fi.IsDir() {
			errs = append(errs, Errorf("Kubeconfig", "%q is not a readable file; start a cluster (`slipway cluster up`) or pass its kubeconfig path", e.Kubeconfig))
		}
	}
	// Secret keys are named in errors; their values never are.
	for _, k := range slices.Sorted(maps.Keys(e.Secrets)) {
		if len(k) > 253 || !keyRE.MatchString(k) {
			errs = append(errs, Errorf("Secrets", "key %q is not a valid secret key; use letters, digits, '-', '_' or '.'", k))
		}
	}
	if len(e.Secrets) > 0 && e.RenderDir != "" {
		errs = append(errs, Errorf("Secrets", "cannot be rendered (RenderDir): the YAML files would hold them in plain text; "+
			"deliver secrets to rendered environments with a secret manager instead"))
	}
	if d.Validate != nil && kindKnown {
		errs = append(errs, flatten(d.Validate(d.WithDefaults(e)))...)
	}
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Definition: d.label(), Env: e.Name, Problems: errs}
}

// label is the definition's name for messages.
func (d *Definition[P]) label() string {
	if d.Name == "" {
		return "stacks"
	}
	return d.Name
}

// checkDefinition checks the definition itself.
func (d *Definition[P]) checkDefinition() []error {
	var errs []error
	if len(d.Name) > 40 || !dnsLabel.MatchString(d.Name) {
		errs = append(errs, fmt.Errorf("Definition.Name %q must be a lower-case DNS label of at most 40 characters, e.g. \"web\"", d.Name))
	}
	if !projectRE.MatchString(d.Project) {
		errs = append(errs, fmt.Errorf("Definition.Project %q is invalid; use letters, digits, '-', '_' or '.' (1-100 characters)", d.Project))
	}
	if d.Run == nil {
		errs = append(errs, errors.New("Definition.Run is nil; set the environment's Pulumi program"))
	}
	for _, k := range slices.Sorted(maps.Keys(d.Defaults)) {
		if !k.Valid() {
			errs = append(errs, fmt.Errorf("Definition.Defaults[%q] is not a kind; use dev, qa, staging, prod or ephemeral", k))
		}
	}
	seen := map[string]bool{}
	for i, f := range d.Flags {
		if !flagRE.MatchString(f.Name) || seen[f.Name] {
			errs = append(errs, fmt.Errorf("Definition.Flags[%d].Name %q must be a unique lower-case flag name such as \"image\"", i, f.Name))
		}
		seen[f.Name] = true
		if _, err := resolve(reflect.TypeFor[P](), f.Path); err != nil {
			errs = append(errs, fmt.Errorf("Definition.Flags[%d].Path: %w; use one of %s", i, err, strings.Join(leafPaths(reflect.TypeFor[P]()), ", ")))
		}
	}
	return errs
}

// Program checks e and returns its automation program: the definition's
// project, the stack e.Stack(), Version(e) (as given, so a rollback
// rebuilds the same request), the secrets as one secret configuration
// value, and the plugins it needs. Bad input never reaches the engine.
func (d *Definition[P]) Program(e Env[P]) (automation.Program, error) {
	if err := d.Check(e); err != nil {
		return automation.Program{}, err
	}
	version := d.Version(e)
	e = d.WithDefaults(e)
	prog := automation.Program{Project: d.Project, Stack: e.Stack(), Version: version, Run: d.run(e)}
	if d.Plugins != nil {
		prog.Plugins = d.Plugins(e)
	}
	if len(e.Secrets) > 0 {
		b, err := json.Marshal(e.Secrets)
		if err != nil {
			return automation.Program{}, Errorf("Secrets", "%w", err)
		}
		prog.Config = map[string]automation.ConfigValue{SecretsConfigKey: {Value: string(b), Secret: true}}
	}
	return prog, nil
}

// run wraps Run: Kubernetes objects are force-applied, a rendering stack
// with secrets in its configuration is refused, and each run gets its own
// copy of the environment.
func (d *Definition[P]) run(e Env[P]) pulumi.RunFunc {
	return guard(e.RenderDir, func(ctx *pulumi.Context) error { return d.Run(ctx, clone(e)) })
}

// guard wraps a program: Kubernetes objects are force-applied and a
// rendering stack with secrets in its configuration is refused.
func guard(renderDir string, run pulumi.RunFunc) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		if err := forceApply(ctx); err != nil {
			return err
		}
		if _, ok := ctx.GetConfig(SecretsConfigKey); ok && renderDir != "" {
			return fmt.Errorf("stacks: stack %s has secrets (%s), which rendering (RenderDir) would write in plain text; remove them from its configuration",
				ctx.Stack(), SecretsConfigKey)
		}
		return run(ctx)
	}
}

// CanaryAt returns the program of the release version (an encoded
// environment, see Version) running its canary at weight percent of the
// traffic beside stableVersion, the last good release of the same stack
// (CanaryBuilder). Both are checked as Program checks them, and then by
// the definition's Canary; the program keeps version's Version and
// plugins, so every weight step is an update of the release's stack. A
// version holds no secrets: give the program the release's Config.
func (d *Definition[P]) CanaryAt(version, stableVersion string, weight int) (automation.Program, error) {
	if d.Canary == nil {
		return automation.Program{}, fmt.Errorf("%s: definition %s cannot roll out in steps (it has no Canary); deploy it with up, or give the definition a Canary", d.label(), d.label())
	}
	next, err := d.ParseVersion(version)
	if err != nil {
		return automation.Program{}, err
	}
	stable, err := d.ParseVersion(stableVersion)
	if err != nil {
		return automation.Program{}, fmt.Errorf("the stable release: %w", err)
	}
	prog, err := d.Program(next)
	if err != nil {
		return automation.Program{}, err
	}
	if err := d.Check(stable); err != nil {
		return automation.Program{}, fmt.Errorf("the stable release: %w", err)
	}
	next, stable = d.WithDefaults(next), d.WithDefaults(stable)
	if next.Stack() != stable.Stack() {
		return automation.Program{}, fmt.Errorf("%s: the stable release is of stack %s, not %s; roll out over the same environment's last good release",
			d.label(), stable.Stack(), next.Stack())
	}
	run, err := d.Canary(next, stable, weight)
	if err != nil {
		return automation.Program{}, &InvalidError{Definition: d.label(), Env: next.Name, Problems: flatten(err)}
	}
	prog.Run = guard(next.RenderDir, run)
	return prog, nil
}

// Version encodes e as given (never its Secrets) as JSON; FromVersion
// turns it back into the same program, for release, rollback and promotion
// records.
func (d *Definition[P]) Version(e Env[P]) string {
	b, err := json.Marshal(e)
	if err != nil {
		return ""
	}
	return string(b)
}

// FromVersion rebuilds the program of an environment from its Version.
// Unknown fields are refused: a version of another definition never
// deploys with its parameters silently dropped.
func (d *Definition[P]) FromVersion(v string) (automation.Program, error) {
	e, err := d.ParseVersion(v)
	if err != nil {
		return automation.Program{}, err
	}
	return d.Program(e)
}

// ParseVersion decodes a Version back into the environment it encodes
// (without secrets), refusing unknown fields.
func (d *Definition[P]) ParseVersion(v string) (Env[P], error) {
	var e Env[P]
	if err := strictJSON([]byte(v), &e); err != nil {
		return Env[P]{}, fmt.Errorf("%s: version is not an encoded %s environment: %w", d.label(), d.label(), err)
	}
	return e, nil
}

// Catalog returns the four standard environments on one cluster: dev, qa,
// staging and prod, each named after its kind (defaults apply when their
// programs are built).
func (d *Definition[P]) Catalog(kubeconfig string) []Env[P] {
	var out []Env[P]
	for _, k := range []Kind{Dev, QA, Staging, Prod} {
		out = append(out, Env[P]{Name: string(k), Kind: k, Kubeconfig: kubeconfig})
	}
	return out
}

// Release returns e as a release with an optional smoke check.
func (d *Definition[P]) Release(e Env[P], smoke func(context.Context, *outcome.Result) error) (automation.Release, error) {
	prog, err := d.Program(e)
	if err != nil {
		return automation.Release{}, err
	}
	return automation.Release{Version: prog.Version, Program: prog, Smoke: smoke}, nil
}

// Info names and describes the definition (Builder).
func (d *Definition[P]) Info() Info {
	return Info{Name: d.Name, Project: d.Project, Description: d.Description,
		Flags: slices.Clone(d.Flags), Paths: leafPaths(reflect.TypeFor[P]()), Plugins: d.defaultPlugins()}
}

// defaultPlugins are the plugins Plugins lists for an environment of each
// kind, named after it, with the kind's defaults; sorted, each once.
func (d *Definition[P]) defaultPlugins() []automation.Plugin {
	if d.Plugins == nil {
		return nil
	}
	var out []automation.Plugin
	for _, k := range Kinds() {
		for _, p := range d.Plugins(d.Env(string(k), k)) {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b automation.Plugin) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	return out
}

// FromSpec builds the typed environment a spec asks for: ParamsJSON first,
// then each Param. Every problem is reported at once (*InvalidError). The
// kind is resolved (KindFor) so Version records it.
func (d *Definition[P]) FromSpec(s Spec) (Env[P], error) {
	e := Env[P]{Name: s.Name, Kind: s.Kind, Tenant: s.Tenant, Kubeconfig: s.Kubeconfig, RenderDir: s.RenderDir, Secrets: maps.Clone(s.Secrets)}
	var errs []error
	if e.Kind == "" {
		k, err := d.KindFor(s.Name)
		if err != nil {
			errs = append(errs, &FieldError{Field: "Kind", Err: err})
		}
		e.Kind = k
	}
	if len(s.ParamsJSON) > 0 {
		if err := strictJSON(s.ParamsJSON, &e.Params); err != nil {
			errs = append(errs, fmt.Errorf("Spec.ParamsJSON: %w; the parameters are %s", err, strings.Join(leafPaths(reflect.TypeFor[P]()), ", ")))
		}
	}
	root := reflect.ValueOf(&e.Params).Elem()
	for i, p := range s.Params {
		if err := setPath(root, p.Path, p.Value); err != nil {
			if _, rerr := resolve(root.Type(), p.Path); rerr != nil {
				err = fmt.Errorf("%w; use one of %s", err, strings.Join(leafPaths(root.Type()), ", "))
			}
			errs = append(errs, fmt.Errorf("Spec.Params[%d]: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return e, &InvalidError{Definition: d.label(), Env: s.Name, Problems: errs}
	}
	return e, nil
}

// Build turns a spec into the environment's checked program (Builder).
func (d *Definition[P]) Build(s Spec) (automation.Program, error) {
	e, err := d.FromSpec(s)
	if err != nil {
		return automation.Program{}, err
	}
	return d.Program(e)
}

// ParamType says how the parameter at path takes its value (Builder).
func (d *Definition[P]) ParamType(path string) (ParamType, error) {
	t, err := resolve(reflect.TypeFor[P](), path)
	if err != nil {
		return "", err
	}
	return paramType(t), nil
}

// DefaultParams returns the parameters of an environment of that name and
// kind with nothing given, as JSON (Builder).
func (d *Definition[P]) DefaultParams(name string, kind Kind) (json.RawMessage, error) {
	if kind != "" && !kind.Valid() {
		return nil, Errorf("Kind", "%q is not a kind; use dev, qa, staging, prod or ephemeral", kind)
	}
	if kind == "" {
		k, err := d.KindFor(name)
		if err != nil {
			return nil, &FieldError{Field: "Kind", Err: err}
		}
		kind = k
	}
	b, err := json.Marshal(d.Env(name, kind).Params)
	return b, err
}

var (
	_ Builder       = (*Definition[struct{}])(nil)
	_ CanaryBuilder = (*Definition[struct{}])(nil)
)

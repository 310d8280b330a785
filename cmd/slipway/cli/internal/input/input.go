// Package input is the command line's one place for input parsing: the
// environment flags (--env, --kind, --definition, --param, --params, the
// definitions' shorthands, --policy), secrets (--secret, --secret-env,
// --secrets-file), commit and approval flags, validated into a Spec before
// anything is touched.
package input

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// EnvFlags are the parameters of one or more environments on the command
// line. Everything is validated by parse (through the definition's Build)
// before any cluster, backend or engine call.
type EnvFlags struct {
	g                        *app.Globals
	Names                    string
	definition               string
	Kind, kubeconfig         string
	params                   []string
	paramsFile               string
	secrets                  []string // --secret (secrets.go)
	secretEnv, secretsFiles  []string // --secret-env, --secrets-file
	Packs, levels            []string
	Render                   string // set by `render`: the manifest directory
	Mock                     bool   // set by `policy check`: the program runs under mocks
	Shorthands               map[string]*shorthand
	shorthandOrder           []string
	policyFlags, paramsFlags bool
}

// shorthand is a definition's flag (stacks.Flag) on the command line: one
// flag name, shared by every registered definition that declares it.
type shorthand struct {
	name   string
	owners map[string]stacks.Flag // definition name -> its flag
	multi  bool                   // a map or slice parameter: repeatable
	typ    string                 // the value type in help texts
	Values []string
}

// shorthandValue collects a shorthand's values (pflag.Value).
type shorthandValue struct{ s *shorthand }

func (v shorthandValue) String() string { return strings.Join(v.s.Values, ",") }

func (v shorthandValue) Set(s string) error {
	v.s.Values = append(v.s.Values, s)
	return nil
}

func (v shorthandValue) Type() string { return v.s.typ }

// Register adds the environment flags; policy adds --policy and
// --policy-level (verbs that can change infrastructure).
func (f *EnvFlags) Register(g *app.Globals, cmd *cobra.Command, policy bool) {
	f.g, f.policyFlags = g, policy
	fl := cmd.Flags()
	fl.StringVar(&f.Names, "env", "", "environment name, e.g. dev or pr-42 (required; several comma-separated where the verb allows)")
	fl.StringVar(&f.definition, "definition", "", fmt.Sprintf("environment definition: %s (default %s)", strings.Join(g.Config.DefinitionNames(), ", "), g.Config.DefinitionNames()[0]))
	fl.StringVar(&f.Kind, "kind", "", "environment kind: dev, qa, staging, prod, ephemeral (default: the name when it is one or the definition maps it; any other name needs --kind)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", fmt.Sprintf("target cluster kubeconfig (default: the local cluster of %q)", g.Config.Name+" cluster up"))
	fl.StringArrayVar(&f.params, "param", nil, fmt.Sprintf("definition parameter PATH=VALUE, PATH a dotted field path of the definition's parameters (repeatable; %q lists them)", g.Config.Name+" params"))
	fl.StringVar(&f.paramsFile, "params", "", "JSON file of definition parameters, applied before --param and the shorthands")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for the program, encrypted in state and never printed: KEY=@FILE, KEY=@- (standard input) "+
		"or KEY=VALUE (visible in the process list; avoid) (repeatable)")
	fl.StringArrayVar(&f.secretEnv, "secret-env", nil, "secret KEY=VAR read from environment variable VAR, which no process Slipway starts inherits (repeatable)")
	fl.StringArrayVar(&f.secretsFiles, "secrets-file", nil, "secrets from a file: a JSON object of strings or dotenv KEY=VALUE lines; - reads standard input (repeatable)")
	f.registerShorthands(g, fl)
	if policy {
		fl.StringSliceVar(&f.Packs, "policy", nil, "policy packs to enforce: "+strings.Join(g.Config.PackNames(), ", ")+
			" (advisory in dev/qa/ephemeral, the policies' own levels in staging/prod)")
		fl.StringArrayVar(&f.levels, "policy-level", nil, "override one policy's enforcement, POLICY=advisory|mandatory|remediate|disabled (repeatable)")
	}
}

// registerShorthands adds every registered definition's flags.
func (f *EnvFlags) registerShorthands(g *app.Globals, fl *pflag.FlagSet) {
	f.Shorthands = map[string]*shorthand{}
	for _, b := range g.Config.Definitions {
		info := b.Info()
		for _, fd := range info.Flags {
			s, ok := f.Shorthands[fd.Name]
			if !ok {
				s = &shorthand{name: fd.Name, owners: map[string]stacks.Flag{}}
				f.Shorthands[fd.Name] = s
				f.shorthandOrder = append(f.shorthandOrder, fd.Name)
			}
			s.owners[info.Name] = fd
			s.multi = s.multi || paramKindOf(b, fd.Path) != scalarParam
			switch typ := flagType(b, fd.Path); {
			case s.typ == "":
				s.typ = typ
			case s.typ != typ:
				s.typ = "string" // definitions disagree: a value as text
			}
		}
	}
	for _, name := range f.shorthandOrder {
		s := f.Shorthands[name]
		var usage []string
		for _, p := range g.Config.DefinitionNames() {
			if fd, ok := s.owners[p]; ok {
				u := fd.Usage
				if u == "" {
					u = "sets " + fd.Path
				}
				if len(g.Config.Definitions) > 1 {
					u = p + ": " + u
				}
				usage = append(usage, u)
			}
		}
		fl.Var(shorthandValue{s}, name, strings.Join(usage, "; "))
		if s.typ == "bool" {
			fl.Lookup(name).NoOptDefVal = "true"
		}
	}
}

// EnvNameRE is what an environment name must match.
var EnvNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Spec is validated input: the environments' programs and the policies
// they get.
type Spec struct {
	// Builder is the definition --definition names.
	Builder stacks.Builder
	// Names are the environments --env names, and Kinds their kinds.
	Names []string
	Kinds []stacks.Kind
	// Progs are the environments' programs, in the order of Names.
	Progs []automation.Program
	// Packs are the policy packs --policy names, and Settings the
	// --policy-level overrides.
	Packs    []*policypacks.Pack
	Settings map[string]policypacks.Override
	// Cleanup removes what building the programs wrote; call it once done.
	Cleanup func()
	// kubeconfig is the target cluster's kubeconfig and kubeFrom where it
	// came from (--kubeconfig, $KUBECONFIG, the local cluster of --dir).
	kubeconfig, kubeFrom string
}

// EnvNames splits and checks --env.
func (f *EnvFlags) EnvNames(many bool) ([]string, error) {
	if strings.TrimSpace(f.Names) == "" {
		return nil, app.BadInput("--env is required, e.g. --env dev")
	}
	var out []string
	for _, n := range strings.Split(f.Names, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, app.BadInput("--env %q has an empty name; separate names with single commas, e.g. --env qa,staging", f.Names)
		case len(n) > 40 || !EnvNameRE.MatchString(n):
			return nil, app.BadInput("--env %q must be a lower-case DNS label of at most 40 characters (a-z, 0-9, '-'), e.g. pr-42", n)
		case slices.Contains(out, n):
			return nil, app.BadInput("--env names %q twice; name each environment once", n)
		}
		out = append(out, n)
	}
	if len(out) > 1 && !many {
		return nil, app.BadInput("--env %q names several environments; this verb takes one", f.Names)
	}
	return out, nil
}

// Pairs parses repeated KEY=VALUE flags, refusing empty parts and duplicates.
func Pairs(flag string, values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range values {
		k, v, ok := strings.Cut(s, "=")
		switch {
		case !ok || k == "":
			return nil, app.BadInput("--%s %q: use KEY=VALUE", flag, s)
		case v == "":
			return nil, app.BadInput("--%s %q has an empty value; give KEY=VALUE (leave the flag out to keep the default)", flag, s)
		}
		if _, dup := out[k]; dup {
			return nil, app.BadInput("--%s sets %q twice; give each key once", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

// given is one parameter setting with where it came from, for messages.
type given struct {
	param  stacks.Param
	source string // e.g. "--image nginx:1.28" or "--param App.Replicas=2"
}

// settings turns --param and the selected definition's shorthands into
// parameter settings: the shorthands first (in registration order), then
// --param in the order given.
func (f *EnvFlags) settings(b stacks.Builder, envs int, secrets map[string]string) ([]given, error) {
	prog := b.Info().Name
	var out []given
	for _, name := range f.shorthandOrder {
		s := f.Shorthands[name]
		if len(s.Values) == 0 {
			continue
		}
		fd, ok := s.owners[prog]
		if !ok {
			owners := slices.Sorted(maps.Keys(s.owners))
			return nil, app.BadInput("--%s is a parameter of definition %s, not of %s; select it with --definition %s, or use --param (`%s params --definition %s` lists %s's)",
				name, strings.Join(owners, ", "), prog, owners[0], f.g.Config.Name, prog, prog)
		}
		if name == "namespace" && envs > 1 {
			return nil, app.BadInput("--namespace names one environment's namespace; with several --env names each gets its own, so leave it out")
		}
		kind := paramKindOf(b, fd.Path)
		if kind == mapParam {
			kv, err := Pairs(name, s.Values)
			if err != nil {
				return nil, err
			}
			for k := range secrets {
				if _, ok := kv[k]; ok {
					return nil, app.BadInput("--secret %s is also given with --%s; a key is either a setting or a secret", k, name)
				}
			}
		}
		for _, v := range s.Values {
			out = append(out, given{param: fd.Param(v), source: "--" + name + " " + v})
		}
	}
	for _, s := range f.params {
		p, err := stacks.ParseParam(s)
		if err != nil {
			return nil, app.BadInput("--param %q: use PATH=VALUE, e.g. App.Replicas=2 (`%s params --definition %s` lists the paths)", s, f.g.Config.Name, prog)
		}
		out = append(out, given{param: p, source: "--param " + s})
	}
	return out, nil
}

// Parse validates every flag and builds the environments' programs. It
// touches nothing: the only files it reads are --params, the kubeconfig
// and the local cluster's state (for its kubeconfig path).
func (f *EnvFlags) Parse(g *app.Globals, many bool) (Spec, error) {
	sp := Spec{Cleanup: func() {}}
	names, err := f.EnvNames(many)
	if err != nil {
		return sp, err
	}
	t, err := g.Resolve(f.definition)
	if err != nil {
		return sp, err
	}
	b := t.Definition
	sp.Builder, sp.Names = b, names
	if f.Kind != "" && !stacks.Kind(f.Kind).Valid() {
		return sp, app.BadInput("--kind %q is not a kind; use dev, qa, staging, prod or ephemeral", f.Kind)
	}
	secrets, err := f.readSecrets(g)
	if err != nil {
		return sp, err
	}
	set, err := f.settings(b, len(names), secrets)
	if err != nil {
		return sp, err
	}
	var paramsJSON []byte
	if f.paramsFile != "" {
		if paramsJSON, err = os.ReadFile(f.paramsFile); err != nil {
			return sp, app.BadInput("--params %q is not a readable file: %v; give a JSON file of the definition's parameters (`%s params` prints an example)",
				f.paramsFile, errors.Unwrap(err), g.Config.Name)
		}
	}
	if f.policyFlags {
		if sp.Packs, sp.Settings, err = f.policies(); err != nil {
			return sp, err
		}
	}
	kc, err := f.targetKubeconfig(g, &sp)
	if err != nil {
		return sp, err
	}
	sp.kubeconfig = kc
	var errs []string
	for _, name := range names {
		kind := stacks.Kind(f.Kind)
		if kind == "" {
			if kind, err = b.KindFor(name); err != nil {
				errs = append(errs, fmt.Sprintf("--env %s: %v", name, err))
				continue
			}
		}
		s := stacks.Spec{Name: name, Kind: kind, Kubeconfig: kc, RenderDir: f.Render, ParamsJSON: paramsJSON, Secrets: maps.Clone(secrets)}
		for _, p := range set {
			s.Params = append(s.Params, p.param)
		}
		prog, err := b.Build(s)
		if err != nil {
			errs = append(errs, f.explain(err, set))
		}
		sp.Kinds = append(sp.Kinds, kind)
		sp.Progs = append(sp.Progs, prog)
	}
	if len(errs) > 0 {
		sp.Cleanup()
		return sp, app.BadInput("%s", strings.Join(errs, "\n"))
	}
	return sp, nil
}

// targetKubeconfig returns the kubeconfig the environments target: none
// when rendering, --kubeconfig, the local cluster's, or (policy check,
// under mocks) a placeholder file.
func (f *EnvFlags) targetKubeconfig(g *app.Globals, sp *Spec) (string, error) {
	kc := f.kubeconfig
	switch {
	case f.Render != "":
		return "", nil
	case kc != "":
		if fi, err := os.Stat(kc); err != nil || fi.IsDir() {
			return "", app.BadInput("--kubeconfig %q is not a readable file; pass the path of the target cluster's kubeconfig", kc)
		}
		sp.kubeFrom = "--kubeconfig"
		return kc, nil
	case f.Mock:
		// Under mocks no provider reads it; programs still need a path.
		dir, err := os.MkdirTemp("", "slipway-policy-check-")
		if err != nil {
			return "", err
		}
		sp.Cleanup = func() { _ = os.RemoveAll(dir) }
		kc = filepath.Join(dir, "kubeconfig")
		return kc, os.WriteFile(kc, []byte("# placeholder: policy check runs the program under mocks, no cluster is contacted\n"), 0o600)
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		paths := slices.DeleteFunc(filepath.SplitList(env), func(p string) bool { return p == "" })
		if len(paths) != 1 {
			return "", app.BadInput("$KUBECONFIG lists %d files (%s); an environment targets one cluster: pass --kubeconfig with one file", len(paths), env)
		}
		if fi, err := os.Stat(paths[0]); err != nil || fi.IsDir() {
			return "", app.BadInput("$KUBECONFIG %q is not a readable file; fix it, unset it to use the local cluster of --dir, or pass --kubeconfig", paths[0])
		}
		sp.kubeFrom = "$KUBECONFIG"
		return paths[0], nil
	}
	c, err := localk8s.Load(g.ClusterDir())
	if err != nil {
		return "", app.BadInput("no --kubeconfig given, $KUBECONFIG is not set and no local cluster: %v", err)
	}
	sp.kubeFrom = "the local cluster of --dir"
	return c.Kubeconfig, nil
}

var specParamRE = regexp.MustCompile(`^Spec\.Params\[(\d+)\]: `)

// explain rewrites a definition's refusal in the command line's terms: a
// problem with a parameter setting names the flag that gave it, and a
// problem with a field names the flag that set it.
func (f *EnvFlags) explain(err error, set []given) string {
	var inv *stacks.InvalidError
	if !errors.As(err, &inv) {
		return err.Error()
	}
	lines := make([]string, 0, len(inv.Problems))
	for _, p := range inv.Problems {
		msg := p.Error()
		if m := specParamRE.FindStringSubmatch(msg); m != nil {
			var i int
			fmt.Sscan(m[1], &i)
			if i < len(set) {
				msg = set[i].source + ": " + strings.TrimPrefix(msg, m[0])
			}
		} else if rest, ok := strings.CutPrefix(msg, "Spec.ParamsJSON: "); ok {
			msg = "--params " + f.paramsFile + ": " + rest
		}
		var fe *stacks.FieldError
		if errors.As(p, &fe) {
			var by []string
			for _, s := range set {
				if strings.EqualFold("Params."+s.param.Path, fe.Field) {
					by = append(by, s.source)
				}
			}
			if len(by) > 0 {
				msg += " (given as " + strings.Join(by, ", ") + ")"
			}
		}
		lines = append(lines, inv.Definition+": "+msg)
	}
	return strings.Join(lines, "\n")
}

// policies parses --policy and --policy-level.
func (f *EnvFlags) policies() ([]*policypacks.Pack, map[string]policypacks.Override, error) {
	if len(f.Packs) == 0 {
		if len(f.levels) > 0 {
			return nil, nil, app.BadInput("--policy-level needs --policy naming the packs whose policies it changes")
		}
		return nil, nil, nil
	}
	packs, err := f.g.Config.PacksByName(f.Packs...)
	if err != nil {
		return nil, nil, err
	}
	levels, err := Pairs("policy-level", f.levels)
	if err != nil {
		return nil, nil, err
	}
	over := map[string]policypacks.Override{}
	for name, l := range levels {
		over[name] = policypacks.Override{Enforcement: policypacks.Enforcement(l)}
	}
	if err := (policypacks.Settings{Overrides: over}).Validate(packs...); err != nil {
		return nil, nil, app.BadInput("--policy-level: %v", err)
	}
	return packs, over, nil
}

// Lookup rebuilds a release of the environment from its version (rollback,
// a deploy's or rollout's lookup of the last good release), held to
// policies, the policies the environment's program gets (Prepare).
func (sp Spec) Lookup(policies []string) func(version string) (automation.Program, error) {
	return func(v string) (automation.Program, error) {
		p, err := sp.Builder.FromVersion(v)
		p.Policies = policies
		return p, err
	}
}

// Prepare validates the flags, then opens the engine and gives each
// environment's program its policies.
func Prepare(g *app.Globals, ctx context.Context, f *EnvFlags, many bool) (*automation.Engine, Spec, []automation.Program, error) {
	sp, err := f.Parse(g, many)
	if err != nil {
		return nil, sp, nil, err
	}
	e, progs, err := programs(g, ctx, sp)
	if err == nil {
		sayTarget(g, e, sp)
	}
	return e, sp, progs, err
}

// sayTarget tells, on stderr and unless --json, which backend and which
// cluster a verb acts on, and where each came from.
func sayTarget(g *app.Globals, e *automation.Engine, sp Spec) {
	if g.JSON {
		return
	}
	from := "default: <dir>/state"
	switch {
	case g.Backend != "":
		from = "--backend"
	case os.Getenv("PULUMI_BACKEND_URL") != "":
		from = "$PULUMI_BACKEND_URL"
	}
	fmt.Fprintf(g.Errw, "%s: backend %s (%s)\n", g.Config.Name, app.RedactQuery(e.Backend()), from)
	if sp.kubeconfig == "" || sp.kubeFrom == "" {
		return
	}
	server := "?"
	if cfg, err := clientcmd.BuildConfigFromFlags("", sp.kubeconfig); err == nil {
		server = cfg.Host
	}
	fmt.Fprintf(g.Errw, "%s: cluster %s (kubeconfig %s, from %s)\n", g.Config.Name, server, sp.kubeconfig, sp.kubeFrom)
}

// programs opens the engine and returns each environment's program with
// the policies it must pass on every path that changes it.
func programs(g *app.Globals, ctx context.Context, sp Spec) (*automation.Engine, []automation.Program, error) {
	e, err := g.Engine(ctx)
	if err != nil {
		return nil, nil, err
	}
	progs := slices.Clone(sp.Progs)
	for i := range progs {
		if progs[i].Policies, err = policyDirs(g, e, progs[i].Stack, sp.Kinds[i], sp); err != nil {
			return nil, nil, err
		}
	}
	return e, progs, nil
}

// policyDirs writes the policy pack directory of one environment.
func policyDirs(g *app.Globals, e *automation.Engine, stack string, kind stacks.Kind, sp Spec) ([]string, error) {
	if len(sp.Packs) == 0 {
		return nil, nil
	}
	set := policypacks.Settings{Kind: string(kind), Overrides: sp.Settings}
	dir, err := e.PolicyDir(stack, set, sp.Packs...)
	if err != nil {
		return nil, err
	}
	return []string{dir}, nil
}

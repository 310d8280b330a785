package cli

import (
	"cmp"
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
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// envFlags are the parameters of one or more environments on the command
// line. Everything is validated by parse (through the definition's Build)
// before any cluster, backend or engine call.
type envFlags struct {
	g                        *globals
	names                    string
	program                  string
	kind, kubeconfig         string
	params                   []string
	paramsFile               string
	secrets                  []string // --secret (secrets.go)
	secretEnv, secretsFiles  []string // --secret-env, --secrets-file
	packs, levels            []string
	render                   string // set by `render`: the manifest directory
	mock                     bool   // set by `policy check`: the program runs under mocks
	shorthands               map[string]*shorthand
	shorthandOrder           []string
	policyFlags, paramsFlags bool
}

// shorthand is a definition's flag (stacks.Flag) on the command line: one
// flag name, shared by every registered definition that declares it.
type shorthand struct {
	name   string
	owners map[string]stacks.Flag // program name -> its flag
	multi  bool                   // a map or slice parameter: repeatable
	typ    string                 // the value type in help texts
	values []string
}

// shorthandValue collects a shorthand's values (pflag.Value).
type shorthandValue struct{ s *shorthand }

func (v shorthandValue) String() string { return strings.Join(v.s.values, ",") }
func (v shorthandValue) Set(s string) error {
	v.s.values = append(v.s.values, s)
	return nil
}
func (v shorthandValue) Type() string { return v.s.typ }

// register adds the environment flags; policy adds --policy and
// --policy-level (verbs that can change infrastructure).
func (f *envFlags) register(g *globals, cmd *cobra.Command, policy bool) {
	f.g, f.policyFlags = g, policy
	fl := cmd.Flags()
	fl.StringVar(&f.names, "env", "", "environment name, e.g. dev or pr-42 (required; several comma-separated where the verb allows)")
	fl.StringVar(&f.program, "program", "", fmt.Sprintf("environment definition: %s (default %s)", strings.Join(g.cfg.programNames(), ", "), g.cfg.programNames()[0]))
	fl.StringVar(&f.kind, "kind", "", "environment kind: dev, qa, staging, prod, ephemeral (default: the name when it is one or the program maps it; any other name needs --kind)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", fmt.Sprintf("target cluster kubeconfig (default: the local cluster of %q)", g.cfg.name+" cluster up"))
	fl.StringArrayVar(&f.params, "param", nil, fmt.Sprintf("program parameter PATH=VALUE, PATH a dotted field path of the program's parameters (repeatable; %q lists them)", g.cfg.name+" params"))
	fl.StringVar(&f.paramsFile, "params", "", "JSON file of program parameters, applied before --param and the shorthands")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for the program, encrypted in state and never printed: KEY=@FILE, KEY=@- (standard input) "+
		"or KEY=VALUE (visible in the process list; avoid) (repeatable)")
	fl.StringArrayVar(&f.secretEnv, "secret-env", nil, "secret KEY=VAR read from environment variable VAR, which no process Slipway starts inherits (repeatable)")
	fl.StringArrayVar(&f.secretsFiles, "secrets-file", nil, "secrets from a file: a JSON object of strings or dotenv KEY=VALUE lines; - reads standard input (repeatable)")
	f.registerShorthands(g, fl)
	if policy {
		fl.StringSliceVar(&f.packs, "policy", nil, "policy packs to enforce: "+strings.Join(g.cfg.packNames(), ", ")+
			" (advisory in dev/qa/ephemeral, the policies' own levels in staging/prod)")
		fl.StringArrayVar(&f.levels, "policy-level", nil, "override one policy's enforcement, POLICY=advisory|mandatory|remediate|disabled (repeatable)")
	}
}

// registerShorthands adds every registered definition's flags.
func (f *envFlags) registerShorthands(g *globals, fl *pflag.FlagSet) {
	f.shorthands = map[string]*shorthand{}
	for _, b := range g.cfg.programs {
		info := b.Info()
		for _, fd := range info.Flags {
			s, ok := f.shorthands[fd.Name]
			if !ok {
				s = &shorthand{name: fd.Name, owners: map[string]stacks.Flag{}}
				f.shorthands[fd.Name] = s
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
		s := f.shorthands[name]
		var usage []string
		for _, p := range g.cfg.programNames() {
			if fd, ok := s.owners[p]; ok {
				u := fd.Usage
				if u == "" {
					u = "sets " + fd.Path
				}
				if len(g.cfg.programs) > 1 {
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

var (
	envNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	pluginRE  = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// spec is validated input: the environments' programs and the policies
// they get.
type spec struct {
	builder  stacks.Builder
	names    []string
	kinds    []stacks.Kind
	progs    []automation.Program
	packs    []*policypacks.Pack
	settings map[string]policypacks.Override
	cleanup  func()
	// kubeconfig is the target cluster's kubeconfig and kubeFrom where it
	// came from (--kubeconfig, $KUBECONFIG, the local cluster of --dir).
	kubeconfig, kubeFrom string
}

// envNames splits and checks --env.
func (f *envFlags) envNames(many bool) ([]string, error) {
	if strings.TrimSpace(f.names) == "" {
		return nil, badInput("--env is required, e.g. --env dev")
	}
	var out []string
	for _, n := range strings.Split(f.names, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, badInput("--env %q has an empty name; separate names with single commas, e.g. --env qa,staging", f.names)
		case len(n) > 40 || !envNameRE.MatchString(n):
			return nil, badInput("--env %q must be a lower-case DNS label of at most 40 characters (a-z, 0-9, '-'), e.g. pr-42", n)
		case slices.Contains(out, n):
			return nil, badInput("--env names %q twice; name each environment once", n)
		}
		out = append(out, n)
	}
	if len(out) > 1 && !many {
		return nil, badInput("--env %q names several environments; this verb takes one", f.names)
	}
	return out, nil
}

// pairs parses repeated KEY=VALUE flags, refusing empty parts and duplicates.
func pairs(flag string, values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range values {
		k, v, ok := strings.Cut(s, "=")
		switch {
		case !ok || k == "":
			return nil, badInput("--%s %q: use KEY=VALUE", flag, s)
		case v == "":
			return nil, badInput("--%s %q has an empty value; give KEY=VALUE (leave the flag out to keep the default)", flag, s)
		}
		if _, dup := out[k]; dup {
			return nil, badInput("--%s sets %q twice; give each key once", flag, k)
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
func (f *envFlags) settings(b stacks.Builder, envs int, secrets map[string]string) ([]given, error) {
	prog := b.Info().Name
	var out []given
	for _, name := range f.shorthandOrder {
		s := f.shorthands[name]
		if len(s.values) == 0 {
			continue
		}
		fd, ok := s.owners[prog]
		if !ok {
			owners := slices.Sorted(maps.Keys(s.owners))
			return nil, badInput("--%s is a parameter of program %s, not of %s; select it with --program %s, or use --param (`%s params --program %s` lists %s's)",
				name, strings.Join(owners, ", "), prog, owners[0], f.g.cfg.name, prog, prog)
		}
		if name == "namespace" && envs > 1 {
			return nil, badInput("--namespace names one environment's namespace; with several --env names each gets its own, so leave it out")
		}
		kind := paramKindOf(b, fd.Path)
		if kind == mapParam {
			kv, err := pairs(name, s.values)
			if err != nil {
				return nil, err
			}
			for k := range secrets {
				if _, ok := kv[k]; ok {
					return nil, badInput("--secret %s is also given with --%s; a key is either a setting or a secret", k, name)
				}
			}
		}
		for _, v := range s.values {
			out = append(out, given{param: fd.Param(v), source: "--" + name + " " + v})
		}
	}
	for _, s := range f.params {
		p, err := stacks.ParseParam(s)
		if err != nil {
			return nil, badInput("--param %q: use PATH=VALUE, e.g. App.Replicas=2 (`%s params --program %s` lists the paths)", s, f.g.cfg.name, prog)
		}
		out = append(out, given{param: p, source: "--param " + s})
	}
	return out, nil
}

// parse validates every flag and builds the environments' programs. It
// touches nothing: the only files it reads are --params, the kubeconfig
// and the local cluster's state (for its kubeconfig path).
func (f *envFlags) parse(g *globals, many bool) (spec, error) {
	sp := spec{cleanup: func() {}}
	names, err := f.envNames(many)
	if err != nil {
		return sp, err
	}
	if err := g.validateGlobals(); err != nil {
		return sp, err
	}
	b, err := g.cfg.program(f.program)
	if err != nil {
		return sp, err
	}
	sp.builder, sp.names = b, names
	if f.kind != "" && !stacks.Kind(f.kind).Valid() {
		return sp, badInput("--kind %q is not a kind; use dev, qa, staging, prod or ephemeral", f.kind)
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
			return sp, badInput("--params %q is not a readable file: %v; give a JSON file of the program's parameters (`%s params` prints an example)",
				f.paramsFile, errors.Unwrap(err), g.cfg.name)
		}
	}
	if f.policyFlags {
		if sp.packs, sp.settings, err = f.policies(); err != nil {
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
		kind := stacks.Kind(f.kind)
		if kind == "" {
			if kind, err = b.KindFor(name); err != nil {
				errs = append(errs, fmt.Sprintf("--env %s: %v", name, err))
				continue
			}
		}
		s := stacks.Spec{Name: name, Kind: kind, Kubeconfig: kc, RenderDir: f.render, ParamsJSON: paramsJSON, Secrets: maps.Clone(secrets)}
		for _, p := range set {
			s.Params = append(s.Params, p.param)
		}
		prog, err := b.Build(s)
		if err != nil {
			errs = append(errs, f.explain(err, set))
		}
		sp.kinds = append(sp.kinds, kind)
		sp.progs = append(sp.progs, prog)
	}
	if len(errs) > 0 {
		sp.cleanup()
		return sp, badInput("%s", strings.Join(errs, "\n"))
	}
	return sp, nil
}

// targetKubeconfig returns the kubeconfig the environments target: none
// when rendering, --kubeconfig, the local cluster's, or (policy check,
// under mocks) a placeholder file.
func (f *envFlags) targetKubeconfig(g *globals, sp *spec) (string, error) {
	kc := f.kubeconfig
	switch {
	case f.render != "":
		return "", nil
	case kc != "":
		if fi, err := os.Stat(kc); err != nil || fi.IsDir() {
			return "", badInput("--kubeconfig %q is not a readable file; pass the path of the target cluster's kubeconfig", kc)
		}
		sp.kubeFrom = "--kubeconfig"
		return kc, nil
	case f.mock:
		// Under mocks no provider reads it; programs still need a path.
		dir, err := os.MkdirTemp("", "slipway-policy-check-")
		if err != nil {
			return "", err
		}
		sp.cleanup = func() { _ = os.RemoveAll(dir) }
		kc = filepath.Join(dir, "kubeconfig")
		return kc, os.WriteFile(kc, []byte("# placeholder: policy check runs the program under mocks, no cluster is contacted\n"), 0o600)
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		paths := slices.DeleteFunc(filepath.SplitList(env), func(p string) bool { return p == "" })
		if len(paths) != 1 {
			return "", badInput("$KUBECONFIG lists %d files (%s); an environment targets one cluster: pass --kubeconfig with one file", len(paths), env)
		}
		if fi, err := os.Stat(paths[0]); err != nil || fi.IsDir() {
			return "", badInput("$KUBECONFIG %q is not a readable file; fix it, unset it to use the local cluster of --dir, or pass --kubeconfig", paths[0])
		}
		sp.kubeFrom = "$KUBECONFIG"
		return paths[0], nil
	}
	c, err := localk8s.Load(g.clusterDir())
	if err != nil {
		return "", badInput("no --kubeconfig given, $KUBECONFIG is not set and no local cluster: %v", err)
	}
	sp.kubeFrom = "the local cluster of --dir"
	return c.Kubeconfig, nil
}

var specParamRE = regexp.MustCompile(`^Spec\.Params\[(\d+)\]: `)

// explain rewrites a definition's refusal in the command line's terms: a
// problem with a parameter setting names the flag that gave it, and a
// problem with a field names the flag that set it.
func (f *envFlags) explain(err error, set []given) string {
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
func (f *envFlags) policies() ([]*policypacks.Pack, map[string]policypacks.Override, error) {
	if len(f.packs) == 0 {
		if len(f.levels) > 0 {
			return nil, nil, badInput("--policy-level needs --policy naming the packs whose policies it changes")
		}
		return nil, nil, nil
	}
	packs, err := f.g.cfg.packsByName(f.packs...)
	if err != nil {
		return nil, nil, err
	}
	levels, err := pairs("policy-level", f.levels)
	if err != nil {
		return nil, nil, err
	}
	over := map[string]policypacks.Override{}
	for name, l := range levels {
		over[name] = policypacks.Override{Enforcement: policypacks.Enforcement(l)}
	}
	if err := (policypacks.Settings{Overrides: over}).Validate(packs...); err != nil {
		return nil, nil, badInput("--policy-level: %v", err)
	}
	return packs, over, nil
}

// validateGlobals checks the persistent flags that name things outside.
func (g *globals) validateGlobals() error {
	if g.backend != "" {
		if err := automation.ValidateBackend(g.backend); err != nil {
			return badInput("--backend: %v", err)
		}
	} else if u := os.Getenv("PULUMI_BACKEND_URL"); u != "" {
		if err := automation.ValidateBackend(u); err != nil {
			return badInput("$PULUMI_BACKEND_URL: %v", err)
		}
	}
	if b := cmp.Or(g.backend, os.Getenv("PULUMI_BACKEND_URL")); b != "" && !g.localRecords && !statestore.Supported(b) {
		return badInput("%v", &automation.RecordsError{Backend: redactQuery(b)})
	}
	for _, p := range g.plugins {
		if _, err := parsePlugin(p); err != nil {
			return err
		}
	}
	if _, err := notifiersFromEnv(os.Getenv); err != nil {
		return err // chat notifiers (chatops.go)
	}
	return nil
}

// plugin is a --plugin value.
type plugin struct{ name, version, path string }

// parsePlugin reads NAME[@VERSION]=PATH; the version defaults to the one
// this binary's SDKs ask for (aws).
func parsePlugin(s string) (plugin, error) {
	nv, path, ok := strings.Cut(s, "=")
	name, version, hasVersion := strings.Cut(nv, "@")
	if !ok || !pluginRE.MatchString(name) || path == "" || (hasVersion && version == "") {
		return plugin{}, badInput("--plugin %q: use NAME[@VERSION]=PATH, e.g. aws=/opt/pulumi/pulumi-resource-aws", s)
	}
	if !hasVersion {
		if name != "aws" {
			return plugin{}, badInput("--plugin %q: give the version of %s as %s@VERSION=PATH", s, name, name)
		}
		version = toolchain.AWSProviderVersion
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return plugin{}, badInput("--plugin %s: %q is not an executable file", name, path)
	}
	return plugin{name, version, path}, nil
}

// prepare validates the flags, then opens the engine and gives each
// environment's program its policies.
func (g *globals) prepare(ctx context.Context, f *envFlags, many bool) (*automation.Engine, spec, []automation.Program, error) {
	sp, err := f.parse(g, many)
	if err != nil {
		return nil, sp, nil, err
	}
	e, progs, err := g.programs(ctx, sp)
	if err == nil {
		g.sayTarget(e, sp)
	}
	return e, sp, progs, err
}

// sayTarget tells, on stderr and unless --json, which backend and which
// cluster a verb acts on, and where each came from.
func (g *globals) sayTarget(e *automation.Engine, sp spec) {
	if g.json {
		return
	}
	from := "default: <dir>/state"
	switch {
	case g.backend != "":
		from = "--backend"
	case os.Getenv("PULUMI_BACKEND_URL") != "":
		from = "$PULUMI_BACKEND_URL"
	}
	fmt.Fprintf(g.errw, "%s: backend %s (%s)\n", g.cfg.name, redactQuery(e.Backend()), from)
	if sp.kubeconfig == "" || sp.kubeFrom == "" {
		return
	}
	server := "?"
	if cfg, err := clientcmd.BuildConfigFromFlags("", sp.kubeconfig); err == nil {
		server = cfg.Host
	}
	fmt.Fprintf(g.errw, "%s: cluster %s (kubeconfig %s, from %s)\n", g.cfg.name, server, sp.kubeconfig, sp.kubeFrom)
}

// redactQuery drops the query of a URL (it may carry credentials).
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// programs opens the engine and returns each environment's program with
// the policies it must pass on every path that changes it.
func (g *globals) programs(ctx context.Context, sp spec) (*automation.Engine, []automation.Program, error) {
	e, err := g.engine(ctx)
	if err != nil {
		return nil, nil, err
	}
	progs := slices.Clone(sp.progs)
	for i := range progs {
		if progs[i].Policies, err = g.policyDirs(e, progs[i].Stack, sp.kinds[i], sp); err != nil {
			return nil, nil, err
		}
	}
	return e, progs, nil
}

// policyDirs writes the policy pack directory of one environment.
func (g *globals) policyDirs(e *automation.Engine, stack string, kind stacks.Kind, sp spec) ([]string, error) {
	if len(sp.packs) == 0 {
		return nil, nil
	}
	set := policypacks.Settings{Kind: string(kind), Overrides: sp.settings}
	dir, err := e.PolicyDir(stack, set, sp.packs...)
	if err != nil {
		return nil, err
	}
	return []string{dir}, nil
}

func (g *globals) engine(ctx context.Context) (*automation.Engine, error) {
	opts := []automation.EngineOption{automation.WithDir(g.dir), automation.WithResolver(g.resolver())}
	if g.backend != "" {
		opts = append(opts, automation.WithBackend(g.backend))
	}
	for _, s := range g.plugins {
		p, err := parsePlugin(s)
		if err != nil {
			return nil, err
		}
		opts = append(opts, automation.WithPlugin(p.name, p.version, p.path))
	}
	if g.forceUnlock {
		opts = append(opts, automation.WithForceUnlock())
	}
	if g.pluginDownload {
		opts = append(opts, automation.WithPluginDownload())
	}
	if g.repair {
		opts = append(opts, automation.WithRepair())
	}
	if g.localRecords {
		opts = append(opts, automation.WithLocalRecords())
	}
	opts = append(opts, g.telemetryEngineOptions()...)
	n, err := g.notifier()
	if err != nil {
		return nil, err
	}
	if n != nil {
		opts = append(opts, automation.WithNotifier(n))
	}
	return automation.New(ctx, opts...)
}

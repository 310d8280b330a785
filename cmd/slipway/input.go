package main

import (
	"context"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// envFlags are the typed parameters of one or more environments on the
// command line. Everything is validated by parse before any cluster,
// backend or engine call.
type envFlags struct {
	names                              string
	kind, kubeconfig, namespace, image string
	replicas                           int
	settings, secrets                  []string
	packs, levels                      []string
	render                             string // set by `render`: the manifest directory
}

// register adds the environment flags; policy adds --policy and
// --policy-level (verbs that can change infrastructure).
func (f *envFlags) register(cmd *cobra.Command, policy bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.names, "env", "", "environment name, e.g. dev or pr-42 (required; several comma-separated where the verb allows)")
	fl.StringVar(&f.kind, "kind", "", "environment kind: dev, qa, staging, prod, ephemeral (default: the name when it is one, else dev)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "target cluster kubeconfig (default: the local cluster of `slipway cluster up`)")
	fl.StringVar(&f.namespace, "namespace", "", "namespace of a single environment (default slipway-<env>)")
	fl.StringVar(&f.image, "image", "", "application image with a pinned tag (default nginx:1.27)")
	fl.IntVar(&f.replicas, "replicas", 0, "application replicas (default 1, 2 in staging, 3 in prod)")
	fl.StringArrayVar(&f.settings, "set", nil, "application setting KEY=VALUE, into its ConfigMap (repeatable)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "application secret KEY=VALUE, into a Kubernetes Secret and encrypted in state (repeatable)")
	if policy {
		fl.StringSliceVar(&f.packs, "policy", nil, "policy packs to enforce: aws, kubernetes, cost (advisory in dev/qa/ephemeral, the policies' own levels in staging/prod)")
		fl.StringArrayVar(&f.levels, "policy-level", nil, "override one policy's enforcement, POLICY=advisory|mandatory|remediate|disabled (repeatable)")
	}
}

var (
	envNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	pluginRE  = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// spec is validated input: the environments and the policies they get.
type spec struct {
	envs     []stacks.Environment
	packs    []*policypacks.Pack
	settings map[string]policypacks.Override
}

// names splits and checks --env.
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

// parse validates every flag and builds the environments. It touches
// nothing: the only files it reads are the kubeconfig and the local
// cluster's state (for its kubeconfig path).
func (f *envFlags) parse(g *globals, many bool) (spec, error) {
	var sp spec
	names, err := f.envNames(many)
	if err != nil {
		return sp, err
	}
	if err := g.validateGlobals(); err != nil {
		return sp, err
	}
	if f.kind != "" && !stacks.Kind(f.kind).Valid() {
		return sp, badInput("--kind %q is not a kind; use dev, qa, staging, prod or ephemeral", f.kind)
	}
	if f.namespace != "" && len(names) > 1 {
		return sp, badInput("--namespace names one environment's namespace; with several --env names each gets slipway-<env>, so leave it out")
	}
	if f.replicas < 0 {
		return sp, badInput("--replicas %d is negative; use 1 to 100", f.replicas)
	}
	settings, err := pairs("set", f.settings)
	if err != nil {
		return sp, err
	}
	secrets, err := pairs("secret", f.secrets)
	if err != nil {
		return sp, err
	}
	for k := range secrets {
		if _, ok := settings[k]; ok {
			return sp, badInput("--secret %s is also given with --set; a key is either a setting or a secret", k)
		}
	}
	if sp.packs, sp.settings, err = f.policies(); err != nil {
		return sp, err
	}
	kc := f.kubeconfig
	switch {
	case f.render != "":
	case kc != "":
		if fi, err := os.Stat(kc); err != nil || fi.IsDir() {
			return sp, badInput("--kubeconfig %q is not a readable file; pass the path of the target cluster's kubeconfig", kc)
		}
	default:
		c, err := localk8s.Load(g.clusterDir())
		if err != nil {
			return sp, badInput("no --kubeconfig given and no local cluster: %v", err)
		}
		kc = c.Kubeconfig
	}
	var errs []string
	for _, name := range names {
		kind := stacks.Kind(f.kind)
		if kind == "" {
			kind = stacks.Dev
			if k := stacks.Kind(name); k.Valid() {
				kind = k
			}
		}
		env := stacks.Environment{Name: name, Kind: kind, Kubeconfig: kc, Namespace: f.namespace, RenderDir: f.render,
			App: stacks.App{Image: f.image, Replicas: f.replicas, Settings: maps.Clone(settings), Secrets: maps.Clone(secrets)}}
		if err := env.Validate(); err != nil {
			errs = append(errs, err.Error())
		}
		sp.envs = append(sp.envs, env)
	}
	if len(errs) > 0 {
		return sp, badInput("%s", strings.Join(errs, "\n"))
	}
	return sp, nil
}

// policies parses --policy and --policy-level.
func (f *envFlags) policies() ([]*policypacks.Pack, map[string]policypacks.Override, error) {
	if len(f.packs) == 0 {
		if len(f.levels) > 0 {
			return nil, nil, badInput("--policy-level needs --policy naming the packs whose policies it changes")
		}
		return nil, nil, nil
	}
	packs, err := all.ByName(f.packs...)
	if err != nil {
		return nil, nil, badInput("--policy: %v", err)
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
	}
	for _, p := range g.plugins {
		if _, err := parsePlugin(p); err != nil {
			return err
		}
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

// prepare validates the flags, then opens the engine and builds each
// environment's program with its policies.
func (g *globals) prepare(ctx context.Context, f *envFlags, many bool) (*automation.Engine, spec, []automation.Program, error) {
	sp, err := f.parse(g, many)
	if err != nil {
		return nil, sp, nil, err
	}
	e, progs, err := g.programs(ctx, sp)
	return e, sp, progs, err
}

// programs opens the engine and returns each environment's program with
// the policies it must pass on every path that changes it.
func (g *globals) programs(ctx context.Context, sp spec) (*automation.Engine, []automation.Program, error) {
	e, err := g.engine(ctx)
	if err != nil {
		return nil, nil, err
	}
	var progs []automation.Program
	for _, env := range sp.envs {
		p, err := env.Program()
		if err != nil {
			return nil, nil, err
		}
		if p.Policies, err = g.policyDirs(e, env, sp); err != nil {
			return nil, nil, err
		}
		progs = append(progs, p)
	}
	return e, progs, nil
}

// policyDirs writes the policy pack directory of one environment.
func (g *globals) policyDirs(e *automation.Engine, env stacks.Environment, sp spec) ([]string, error) {
	if len(sp.packs) == 0 {
		return nil, nil
	}
	set := policypacks.Settings{Environment: string(env.WithDefaults().Kind), Overrides: sp.settings}
	dir, err := e.PolicyDir(env.Name, set, sp.packs...)
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
	if g.repair {
		opts = append(opts, automation.WithRepair())
	}
	return automation.New(ctx, opts...)
}

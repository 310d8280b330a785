package app

import (
	"cmp"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/stacks"
)

// Target is what a verb that acts on one definition's environments needs:
// the definition, its Pulumi project and, once opened, the engine.
type Target struct {
	// Definition is the definition --definition names (the first when
	// none is given).
	Definition stacks.Builder
	// Project is Definition's Pulumi project.
	Project string
	// Engine is the engine on the run's backend; Resolve leaves it nil,
	// Open opens it.
	Engine *automation.Engine
}

// Resolve validates the persistent flags (--backend or
// $PULUMI_BACKEND_URL, --local-records, --plugin and $SLIPWAY_PLUGINS, the
// chat settings) and
// resolves definition, the value of --definition ("" for the first
// definition). It opens nothing (it only checks that each --plugin is an
// executable file); every error names the flag and the fix. Verbs that only build programs (render, policy check) stop here;
// the others call Open, or Resolve then Engine when they must check
// something between the two (gc's confirmation).
func (g *Globals) Resolve(definition string) (Target, error) {
	if err := g.validateGlobals(); err != nil {
		return Target{}, err
	}
	b, err := g.Config.Definition(definition)
	if err != nil {
		return Target{}, err
	}
	return Target{Definition: b, Project: b.Info().Project}, nil
}

// Open is Resolve followed by Engine: the flags validated, the definition
// resolved and the engine opened on the run's backend.
func (g *Globals) Open(ctx context.Context, definition string) (Target, error) {
	t, err := g.Resolve(definition)
	if err != nil {
		return t, err
	}
	t.Engine, err = g.Engine(ctx)
	return t, err
}

// validateGlobals checks the persistent flags that name things outside.
func (g *Globals) validateGlobals() error {
	if g.Backend != "" {
		if err := automation.ValidateBackend(g.Backend); err != nil {
			return BadInput("--backend: %v", err)
		}
	} else if u := os.Getenv("PULUMI_BACKEND_URL"); u != "" {
		if err := automation.ValidateBackend(u); err != nil {
			return BadInput("$PULUMI_BACKEND_URL: %v", err)
		}
	}
	if b := cmp.Or(g.Backend, os.Getenv("PULUMI_BACKEND_URL")); b != "" && !g.localRecords && !statestore.Supported(b) {
		return BadInput("%v", &automation.RecordsError{Backend: RedactQuery(b)})
	}
	if _, err := g.PluginBinaries(); err != nil {
		return err
	}
	if _, err := notifiersFromEnv(os.Getenv); err != nil {
		return err // chat notifiers (chatops.go)
	}
	return nil
}

var pluginRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// PluginsEnv is the environment variable that adds plugins to the --plugin
// values: NAME[@VERSION]=PATH entries separated by commas. The fleet's
// image (`image build`) sets it to the plugins it holds, so a runner or
// operator started from the image uses them with no argument.
const PluginsEnv = "SLIPWAY_PLUGINS"

// Plugin is a resource plugin binary that Slipway does not build, given
// with --plugin or $SLIPWAY_PLUGINS.
type Plugin struct {
	// Name, Version and Path are NAME@VERSION=PATH.
	Name, Version, Path string
	// From is where it was given: "--plugin" or "$SLIPWAY_PLUGINS".
	From string
}

// ParsePlugin reads a --plugin value, NAME[@VERSION]=PATH; the version
// defaults to the one this binary's SDKs ask for (aws). The path must be
// an executable file.
func ParsePlugin(s string) (Plugin, error) { return parsePlugin(s, "--plugin") }

// parsePlugin reads NAME[@VERSION]=PATH given by from (a flag or a
// variable, named in the errors).
func parsePlugin(s, from string) (Plugin, error) {
	nv, path, ok := strings.Cut(s, "=")
	name, version, hasVersion := strings.Cut(nv, "@")
	if !ok || !pluginRE.MatchString(name) || path == "" || (hasVersion && version == "") {
		return Plugin{}, BadInput("%s %q: use NAME[@VERSION]=PATH, e.g. aws=/opt/pulumi/pulumi-resource-aws", from, s)
	}
	if !hasVersion {
		if name != "aws" {
			return Plugin{}, BadInput("%s %q: give the version of %s as %s@VERSION=PATH", from, s, name, name)
		}
		version = toolchain.AWSProviderVersion
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return Plugin{}, BadInput("%s %s: %q is not an executable file", from, name, path)
	}
	return Plugin{Name: name, Version: version, Path: path, From: from}, nil
}

// PluginBinaries returns the plugins of the run, each validated
// (ParsePlugin): those of $SLIPWAY_PLUGINS, comma-separated, then the
// --plugin values; a --plugin of the same name and version replaces the
// variable's. Errors name the flag or the variable, and the fix.
func (g *Globals) PluginBinaries() ([]Plugin, error) {
	var flags []Plugin
	for _, s := range g.Plugins {
		p, err := ParsePlugin(s)
		if err != nil {
			return nil, err
		}
		flags = append(flags, p)
	}
	var out []Plugin
	if env := os.Getenv(PluginsEnv); env != "" {
		for _, s := range strings.Split(env, ",") {
			if strings.TrimSpace(s) == "" {
				return nil, BadInput("$%s %q has an empty entry; separate NAME@VERSION=PATH entries with single commas, or unset it", PluginsEnv, env)
			}
			p, err := parsePlugin(strings.TrimSpace(s), "$"+PluginsEnv)
			if err != nil {
				return nil, err
			}
			if !slices.ContainsFunc(flags, func(f Plugin) bool { return f.Name == p.Name && f.Version == p.Version }) {
				out = append(out, p)
			}
		}
	}
	return append(out, flags...), nil
}

// RedactQuery drops the query of a URL (it may carry credentials).
func RedactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// Engine opens the engine on the run's backend, with its plugins, telemetry
// and chat notifier. It validates no flag: a verb calls Resolve first (or
// Open, which does both).
func (g *Globals) Engine(ctx context.Context) (*automation.Engine, error) {
	opts := []automation.EngineOption{automation.WithDir(g.Dir), automation.WithResolver(g.Resolver())}
	if g.Backend != "" {
		opts = append(opts, automation.WithBackend(g.Backend))
	}
	plugins, err := g.pluginOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, plugins...)
	if g.forceUnlock {
		opts = append(opts, automation.WithForceUnlock())
	}
	if g.PluginDownload {
		opts = append(opts, automation.WithPluginDownload())
	}
	if g.repair {
		opts = append(opts, automation.WithRepair())
	}
	if g.localRecords {
		opts = append(opts, automation.WithLocalRecords())
	}
	opts = append(opts, g.telemetryEngineOptions()...)
	notify, err := g.notifierOptions()
	if err != nil {
		return nil, err
	}
	return automation.New(ctx, append(opts, notify...)...)
}

// RunnerEngineOptions are the engine options a fleet runner gives every
// Run's engine: the toolchain, the plugins given with --plugin and
// $SLIPWAY_PLUGINS (the image's own, see PluginsEnv), the
// telemetry (on controller-runtime's registry) and the chat notifier when
// one is configured. The Run, not the flags, names the backend and the
// directory.
func (g *Globals) RunnerEngineOptions() ([]automation.EngineOption, error) {
	opts := []automation.EngineOption{automation.WithResolver(g.Resolver())}
	plugins, err := g.pluginOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, plugins...)
	tel, err := g.fleetTelemetryOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, tel...)
	// Every Run's outcome goes to the configured chat channels; the
	// Dispatcher is shared by the runner's engines and flushed on exit.
	notify, err := g.notifierOptions()
	if err != nil {
		return nil, err
	}
	return append(opts, notify...), nil
}

// pluginOptions are the engine options of the plugin binaries
// (PluginBinaries: $SLIPWAY_PLUGINS and --plugin).
func (g *Globals) pluginOptions() ([]automation.EngineOption, error) {
	plugins, err := g.PluginBinaries()
	if err != nil {
		return nil, err
	}
	var opts []automation.EngineOption
	for _, p := range plugins {
		opts = append(opts, automation.WithPlugin(p.Name, p.Version, p.Path))
	}
	return opts, nil
}

// notifierOptions is the engine option of the run's chat notifier, if
// one is configured.
func (g *Globals) notifierOptions() ([]automation.EngineOption, error) {
	n, err := g.notifier()
	if err != nil || n == nil {
		return nil, err
	}
	return []automation.EngineOption{automation.WithNotifier(n)}, nil
}

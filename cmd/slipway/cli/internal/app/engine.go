package app

import (
	"cmp"
	"context"
	"os"
	"regexp"
	"strings"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// ValidateGlobals checks the persistent flags that name things outside.
func (g *Globals) ValidateGlobals() error {
	if g.Backend != "" {
		if err := automation.ValidateBackend(g.Backend); err != nil {
			return BadInput("--backend: %v", err)
		}
	} else if u := os.Getenv("PULUMI_BACKEND_URL"); u != "" {
		if err := automation.ValidateBackend(u); err != nil {
			return BadInput("$PULUMI_BACKEND_URL: %v", err)
		}
	}
	if b := cmp.Or(g.Backend, os.Getenv("PULUMI_BACKEND_URL")); b != "" && !g.LocalRecords && !statestore.Supported(b) {
		return BadInput("%v", &automation.RecordsError{Backend: RedactQuery(b)})
	}
	for _, p := range g.Plugins {
		if _, err := ParsePlugin(p); err != nil {
			return err
		}
	}
	if _, err := notifiersFromEnv(os.Getenv); err != nil {
		return err // chat notifiers (chatops.go)
	}
	return nil
}

var pluginRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// plugin is a --plugin value.
type plugin struct{ Name, Version, Path string }

// ParsePlugin reads NAME[@VERSION]=PATH; the version defaults to the one
// this binary's SDKs ask for (aws).
func ParsePlugin(s string) (plugin, error) {
	nv, path, ok := strings.Cut(s, "=")
	name, version, hasVersion := strings.Cut(nv, "@")
	if !ok || !pluginRE.MatchString(name) || path == "" || (hasVersion && version == "") {
		return plugin{}, BadInput("--plugin %q: use NAME[@VERSION]=PATH, e.g. aws=/opt/pulumi/pulumi-resource-aws", s)
	}
	if !hasVersion {
		if name != "aws" {
			return plugin{}, BadInput("--plugin %q: give the version of %s as %s@VERSION=PATH", s, name, name)
		}
		version = toolchain.AWSProviderVersion
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return plugin{}, BadInput("--plugin %s: %q is not an executable file", name, path)
	}
	return plugin{name, version, path}, nil
}

// RedactQuery drops the query of a URL (it may carry credentials).
func RedactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// Engine opens the engine on the run's backend, with its plugins and telemetry.
func (g *Globals) Engine(ctx context.Context) (*automation.Engine, error) {
	opts := []automation.EngineOption{automation.WithDir(g.Dir), automation.WithResolver(g.Resolver())}
	if g.Backend != "" {
		opts = append(opts, automation.WithBackend(g.Backend))
	}
	for _, s := range g.Plugins {
		p, err := ParsePlugin(s)
		if err != nil {
			return nil, err
		}
		opts = append(opts, automation.WithPlugin(p.Name, p.Version, p.Path))
	}
	if g.ForceUnlock {
		opts = append(opts, automation.WithForceUnlock())
	}
	if g.PluginDownload {
		opts = append(opts, automation.WithPluginDownload())
	}
	if g.Repair {
		opts = append(opts, automation.WithRepair())
	}
	if g.LocalRecords {
		opts = append(opts, automation.WithLocalRecords())
	}
	opts = append(opts, g.telemetryEngineOptions()...)
	n, err := g.Notifier()
	if err != nil {
		return nil, err
	}
	if n != nil {
		opts = append(opts, automation.WithNotifier(n))
	}
	return automation.New(ctx, opts...)
}

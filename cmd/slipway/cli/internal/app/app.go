// Package app is what every verb family of the command line shares: the
// options' Config, the run's Globals (persistent flags, output format,
// secrets to mask, the --json envelope's items), the output (envelope,
// exit codes, error classes, reports), the engine, telemetry, the chat
// notifier and confirmation of destructive verbs.
package app

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// Config is what the options set.
type Config struct {
	// Name is the binary's name, in messages and the docs.
	Name string
	// Definitions are the environment definitions the binary runs; the
	// first is the default of --definition.
	Definitions []stacks.Builder
	// Packs are the team's policy packs, beside Slipway's.
	Packs []*policypacks.Pack
}

// AllPacks returns Slipway's packs and the team's.
func (c *Config) AllPacks() []*policypacks.Pack {
	return append(all.Packs(), c.Packs...)
}

// PackNames lists every pack's short name.
func (c *Config) PackNames() []string {
	var out []string
	for _, p := range c.AllPacks() {
		out = append(out, strings.TrimPrefix(p.Name, "slipway-"))
	}
	return out
}

// PacksByName returns the named packs (Slipway's by short or full name,
// the team's by name).
func (c *Config) PacksByName(names ...string) ([]*policypacks.Pack, error) {
	var out []*policypacks.Pack
	for _, n := range names {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(c.AllPacks(), func(p *policypacks.Pack) bool { return p.Name == n || p.Name == "slipway-"+n })
		if i < 0 {
			return nil, BadInput("--policy: no pack named %s; use %s", n, strings.Join(c.PackNames(), ", "))
		}
		p := c.AllPacks()[i]
		if slices.Contains(out, p) {
			return nil, BadInput("--policy names pack %s twice; name each pack once", n)
		}
		out = append(out, p)
	}
	return out, nil
}

// DefinitionNames lists the registered definitions' names.
func (c *Config) DefinitionNames() []string {
	var out []string
	for _, b := range c.Definitions {
		out = append(out, b.Info().Name)
	}
	return out
}

// Definition returns the definition named name ("" for the first).
func (c *Config) Definition(name string) (stacks.Builder, error) {
	if name == "" {
		return c.Definitions[0], nil
	}
	for _, b := range c.Definitions {
		if b.Info().Name == name {
			return b, nil
		}
	}
	return nil, BadInput("--definition %q is not a definition of %s; use one of %s", name, c.Name, strings.Join(c.DefinitionNames(), ", "))
}

// Globals are the persistent flags and what a run shares. The verb
// families read the exported fields; the rest is app's own.
type Globals struct {
	// Config is what the binary's options set.
	Config *Config
	// In is standard input (--secret KEY=@-, --secrets-file -, the
	// confirmation of destructive verbs).
	In io.Reader
	// Out is standard output: results, reports, the --json envelope.
	Out io.Writer
	// Errw is standard error: progress, warnings and errors.
	Errw io.Writer
	// Dir is --dir, the directory Slipway owns.
	Dir string
	// Backend is --backend ("" for $PULUMI_BACKEND_URL, else the file
	// backend in Dir).
	Backend string
	// JSON is --json (or --format json): the envelope on stdout.
	JSON bool
	// CacheDir is --cache-dir, the toolchain build cache ("" for the
	// default).
	CacheDir string
	// Plugins are the --plugin values, NAME[@VERSION]=PATH (ParsePlugin);
	// PluginBinaries adds those of $SLIPWAY_PLUGINS.
	Plugins []string
	// PluginDownload is --allow-plugin-download.
	PluginDownload bool
	// Format is the resolved output format (ResolveFormat): text when
	// neither --format nor --json is given.
	Format report.Format

	// verbose is -v/--verbose, forceUnlock --force-unlock, repair --repair.
	verbose, forceUnlock, repair bool
	// localRecords accepts a backend without a records driver (--local-records).
	localRecords bool
	// formatFlag is --format as given.
	formatFlag string
	// secrets are the secret values of the run (--secret, --secret-env,
	// --secrets-file, chat credentials, serve's keys); masker masks them
	// in every output. AddSecrets adds to both.
	secrets []string
	masker  *mask.Masker
	// items collect each environment's outcome for the --json envelope.
	items []Item
	// tel is the run's logging, metrics and tracing (telemetry.go).
	tel telemetryFlags
	// chat is the run's chat notifier (chatops.go).
	chat chatState
}

// RegisterFlags adds the persistent flags every verb shares to root.
func (g *Globals) RegisterFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.Dir, "dir", ".slipway", "directory Slipway owns: workspaces, file-backend state, the local cluster")
	pf.StringVar(&g.Backend, "backend", "", "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else a file backend in <dir>/state)")
	pf.BoolVar(&g.localRecords, "local-records", false, "accept a backend Slipway keeps no records in (gs://, azblob://, Pulumi Cloud): release history, runs and approvals stay in <dir> on this machine")
	pf.BoolVar(&g.JSON, "json", false, "print machine-readable JSON (the same as --format json)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log engine activity")
	pf.StringVar(&g.CacheDir, "cache-dir", "", "toolchain build cache (default $SLIPWAY_CACHE_DIR or ~/.cache/slipway)")
	pf.BoolVar(&g.forceUnlock, "force-unlock", false, "remove a stack lock whose owner cannot be proven dead (only when you know no update runs)")
	pf.BoolVar(&g.repair, "repair", false, "let recovery clear interrupted operations on resources it cannot re-adopt (may orphan them)")
	g.registerTelemetry(root)
	pf.StringArrayVar(&g.Plugins, "plugin", nil, "resource plugin binary NAME[@VERSION]=PATH that Slipway does not build, e.g. aws=/opt/pulumi-resource-aws (repeatable; $SLIPWAY_PLUGINS adds comma-separated ones)")
	pf.BoolVar(&g.PluginDownload, "allow-plugin-download", false, "let the engine download a resource plugin that is neither installed nor given with --plugin (needs a network; off by default)")
}

// AddFormat adds --format to a verb that renders reports in formats.
func (g *Globals) AddFormat(cmd *cobra.Command, formats ...report.Format) {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	cmd.Flags().StringVar(&g.formatFlag, "format", "", "output format on stdout: "+strings.Join(names, ", ")+
		" (default text; json is --json's envelope; progress and errors stay on stderr)")
	cmd.Annotations = map[string]string{"formats": strings.Join(names, ",")}
}

// AddDefinition adds --definition to a verb that takes no parameters.
func (g *Globals) AddDefinition(cmd *cobra.Command, definition *string) {
	cmd.Flags().StringVar(definition, "definition", "", fmt.Sprintf("environment definition whose project to use: %s (default %s)",
		strings.Join(g.Config.DefinitionNames(), ", "), g.Config.DefinitionNames()[0]))
}

// ResolveFormat reads --format and --json (an alias of --format json).
func (g *Globals) ResolveFormat(cmd *cobra.Command) error {
	if cmd.Flags().Lookup("format") == nil || !cmd.Flags().Changed("format") {
		if g.JSON {
			g.Format = report.JSON
		}
		return nil
	}
	f, err := report.ParseFormat(g.formatFlag)
	if err == nil && !slices.Contains(strings.Split(cmd.Annotations["formats"], ","), string(f)) {
		err = fmt.Errorf("--format %s is not a format of %s; use one of %s", f, strings.TrimPrefix(cmd.CommandPath(), g.Config.Name+" "), strings.ReplaceAll(cmd.Annotations["formats"], ",", ", "))
	}
	if err != nil {
		var fe *report.FormatError
		if errors.As(err, &fe) {
			return BadInput("--format %q is not a format; use one of %s", fe.Value, strings.ReplaceAll(cmd.Annotations["formats"], ",", ", "))
		}
		return BadInput("%v", err)
	}
	if g.JSON && f != report.JSON {
		return BadInput("--json and --format %s ask for two outputs; give one (--json is --format json)", f)
	}
	g.Format = f
	g.JSON = f == report.JSON
	return nil
}

// AddSecrets adds values to mask in every output of the run.
func (g *Globals) AddSecrets(values ...string) {
	g.secrets = append(g.secrets, values...)
	g.masker = g.masker.With(values...)
}

// Mask replaces the run's secret values, in every form package mask
// knows, in s.
func (g *Globals) Mask(s string) string { return g.masker.String(s) }

// WriteReport renders entries in the run's format on stdout (nothing with
// --json: the envelope carries them).
func (g *Globals) WriteReport(entries ...report.Entry) {
	if g.JSON {
		return
	}
	for i := range entries {
		entries[i].Secrets = append(entries[i].Secrets, g.secrets...)
	}
	if err := report.Write(g.Out, g.Format, entries); err != nil {
		fmt.Fprintf(g.Errw, "%s: writing the %s report: %v\n", g.Config.Name, g.Format, err)
	}
}

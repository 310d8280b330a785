// Package cli is Slipway's command line as a library: a team's own thin
// binary registers its environment definitions (stacks.Builder) and hands
// over, and gets every verb, flag, exit code and output format of slipway
// (which is built exactly that way):
//
//	func main() { cli.Main(cli.Definitions(shop.Definition), cli.Name("shopctl")) }
//
// Every verb that takes --env builds the environment from the selected
// definition (--definition, default the first registered): --param PATH=VALUE,
// --params FILE (JSON), the definition's own flag shorthands (e.g. web's
// --image), --secret KEY=VALUE. Input is validated by the definition before
// anything is touched.
//
// Exit codes: 0 success, 1 error, 2 success with changes or drift found,
// 3 blocked by policy (nothing applied), 4 another update holds the stack.
// With --json (or --format json) every verb prints one envelope (see the
// schema verb); preview, up, drift and policy check also print markdown,
// junit, sarif and github (--format).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// Option configures the command line (Main, Run).
type Option func(*config)

// config is what the options set.
type config struct {
	name        string
	definitions []stacks.Builder
	packs       []*policypacks.Pack
}

// Definitions registers environment definitions; --definition NAME selects one
// (default: the first). At least one is required; names must be unique.
func Definitions(builders ...stacks.Builder) Option {
	return func(c *config) { c.definitions = append(c.definitions, builders...) }
}

// Name sets the binary's name, used in usage texts, in error messages
// ("<name>: ...") and as the JSON envelope's command prefix (default
// "slipway").
func Name(name string) Option { return func(c *config) { c.name = name } }

// PolicyPacks adds packs a team defines to Slipway's own (aws, kubernetes,
// cost): --policy selects them by name, and the binary serves them as the
// engine's policy analyzer (Main).
func PolicyPacks(packs ...*policypacks.Pack) Option {
	return func(c *config) { c.packs = append(c.packs, packs...) }
}

// reserved are the flag names of the command line itself; a definition's
// flag shorthand may not take one.
var reserved = []string{"allow-plugin-download", "approval-public-key-file", "approval-wait", "approve", "backend", "cache-dir", "commit", "commit-time", "concurrency", "dir", "definition", "dry-run", "env", "expect-no-changes", "force-unlock", "format",
	"help", "interval", "json", "key", "kind", "kubeconfig", "local-records", "log-format", "metrics-file", "missing-ok", "out", "parallel", "param", "params", "plugin", "policy",
	"policy-level", "pushgateway", "remediate", "remove", "repair", "requested-by", "secret", "secret-env", "secrets-file", "through", "ttl", "verbose", "yes"}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ConfigError is a mistake in the options given to Main or Run (a
// programming error of the binary, reported before any command runs).
// Get it with errors.As (a *ConfigError).
type ConfigError struct{ Problems []string }

// Error lists the problems.
func (e *ConfigError) Error() string {
	return "cli: " + strings.Join(e.Problems, "; ")
}

// newConfig applies and checks the options.
func newConfig(opts []Option) (*config, error) {
	c := &config{name: "slipway"}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	var probs []string
	if !nameRE.MatchString(c.name) {
		probs = append(probs, fmt.Sprintf("Name(%q) must be a command name such as \"shopctl\"", c.name))
	}
	if len(c.definitions) == 0 {
		probs = append(probs, "no definition registered; pass cli.Definitions(yourDefinition)")
	}
	seen := map[string]bool{}
	for i, b := range c.definitions {
		if b == nil {
			probs = append(probs, fmt.Sprintf("Definitions: builder %d is nil", i))
			continue
		}
		info := b.Info()
		if info.Name == "" || seen[info.Name] {
			probs = append(probs, fmt.Sprintf("Definitions: definition %d's name %q is empty or registered twice; give each definition a unique Name", i, info.Name))
		}
		seen[info.Name] = true
		for _, f := range info.Flags {
			if slices.Contains(reserved, f.Name) {
				probs = append(probs, fmt.Sprintf("Definitions: definition %s's flag --%s is a flag of the command line itself; rename it", info.Name, f.Name))
			}
		}
	}
	packs := map[string]bool{}
	for _, p := range all.Packs() {
		packs[p.Name] = true
	}
	for i, p := range c.packs {
		switch {
		case p == nil:
			probs = append(probs, fmt.Sprintf("PolicyPacks: pack %d is nil", i))
		case packs[p.Name] || packs["slipway-"+p.Name]:
			probs = append(probs, fmt.Sprintf("PolicyPacks: pack %q is registered twice (or takes the name of one of Slipway's); rename it", p.Name))
		default:
			if err := p.Validate(); err != nil {
				probs = append(probs, fmt.Sprintf("PolicyPacks: pack %q: %v", p.Name, err))
			}
			packs[p.Name] = true
		}
	}
	if len(probs) > 0 {
		return c, &ConfigError{Problems: probs}
	}
	return c, nil
}

// allPacks returns Slipway's packs and the team's.
func (c *config) allPacks() []*policypacks.Pack {
	return append(all.Packs(), c.packs...)
}

// packNames lists every pack's short name.
func (c *config) packNames() []string {
	var out []string
	for _, p := range c.allPacks() {
		out = append(out, strings.TrimPrefix(p.Name, "slipway-"))
	}
	return out
}

// packsByName returns the named packs (Slipway's by short or full name,
// the team's by name).
func (c *config) packsByName(names ...string) ([]*policypacks.Pack, error) {
	var out []*policypacks.Pack
	for _, n := range names {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(c.allPacks(), func(p *policypacks.Pack) bool { return p.Name == n || p.Name == "slipway-"+n })
		if i < 0 {
			return nil, badInput("--policy: no pack named %s; use %s", n, strings.Join(c.packNames(), ", "))
		}
		p := c.allPacks()[i]
		if slices.Contains(out, p) {
			return nil, badInput("--policy names pack %s twice; name each pack once", n)
		}
		out = append(out, p)
	}
	return out, nil
}

// definitionNames lists the registered definitions' names.
func (c *config) definitionNames() []string {
	var out []string
	for _, b := range c.definitions {
		out = append(out, b.Info().Name)
	}
	return out
}

// definition returns the definition named name ("" for the first).
func (c *config) definition(name string) (stacks.Builder, error) {
	if name == "" {
		return c.definitions[0], nil
	}
	for _, b := range c.definitions {
		if b.Info().Name == name {
			return b, nil
		}
	}
	return nil, badInput("--definition %q is not a definition of %s; use one of %s", name, c.name, strings.Join(c.definitionNames(), ", "))
}

// PrivateUmask is the file mode creation mask Main sets: no access for group
// and others.
const PrivateUmask = 0o077

// Main runs the command line on os.Args and exits with its exit code. It
// first serves the policy analyzer when the engine started the binary as
// one (Slipway's packs and those of PolicyPacks), and cancels the command
// on SIGINT or SIGTERM.
func Main(opts ...Option) {
	// controller-runtime's packages (the fleet's client and metrics) log
	// through a global logr; without a logger they print a stack trace after
	// 30 s. Warnings and errors go to stderr until a fleet verb sets its own.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	// What the binary and the processes it starts create (state, stack
	// settings, records, logs; the engine's and the cluster's files too) is
	// readable by its owner only: directories 0700, files 0600. Secrets in
	// state are often protected by an empty passphrase alone.
	syscall.Umask(PrivateUmask)
	if c, err := newConfig(opts); err == nil {
		policypacks.ServeIfAnalyzer(c.allPacks()...)
	} else {
		all.ServeIfAnalyzer()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr, opts...)
	stop()
	os.Exit(code)
}

// Run runs the command line with args (without the binary's name) and
// returns the exit code: the error, if any, is printed on stderr, and the
// formatted output (--json's envelope, --format's report) on stdout. It
// does not serve the policy analyzer: a test that runs verbs with --policy
// in-process serves it from TestMain.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, opts ...Option) int {
	c, err := newConfig(opts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.name, err)
		return ExitError
	}
	root, g := newRoot(c, stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	_, code := classify(err)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.name, g.mask(err.Error()))
	}
	g.closeNotifier()
	g.finishTelemetry(err)
	if g.json && (cmd == nil || cmd.Name() != "schema") {
		name := c.name
		if cmd != nil {
			name = strings.TrimPrefix(cmd.CommandPath(), c.name+" ")
		}
		g.writeEnvelope(stdout, name, err)
	}
	return code
}

// globals are the persistent flags and what a run shares.
type globals struct {
	cfg         *config
	in          io.Reader // standard input (--secret KEY=@-, --secrets-file -)
	out, errw   io.Writer
	dir         string
	backend     string
	json        bool
	verbose     bool
	cacheDir    string
	forceUnlock bool
	repair      bool
	// localRecords accepts a backend without a records driver (--local-records).
	localRecords bool
	plugins      []string
	// pluginDownload is --allow-plugin-download.
	pluginDownload bool
	// formatFlag is --format as given; format is the resolved output
	// format (text when neither --format nor --json is given).
	formatFlag string
	format     report.Format
	// secrets are the secret values of the run (--secret, --secret-env,
	// --secrets-file, chat credentials); masker masks them in every output.
	secrets []string
	masker  *mask.Masker
	// items collect each environment's outcome for the --json envelope.
	items []item
	// tel is the run's logging, metrics and tracing (telemetry.go).
	tel telemetryFlags
	// chat is the run's chat notifier (chatops.go).
	chat chatState
}

func newRoot(c *config, stdout, stderr io.Writer) (*cobra.Command, *globals) {
	g := &globals{cfg: c, in: os.Stdin, out: stdout, errw: stderr, format: report.Text}
	root := &cobra.Command{
		Use:           c.name,
		Short:         "Provision, check and observe environments through the Pulumi engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.startTelemetry(cmd); err != nil {
				return err
			}
			return g.resolveFormat(cmd)
		},
	}
	if len(c.definitions) > 0 {
		root.Long = fmt.Sprintf("%s.\n\nDefinitions (--definition): %s (default %s); see `%s params`.", root.Short,
			strings.Join(c.definitionNames(), ", "), c.definitionNames()[0], c.name)
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.dir, "dir", ".slipway", "directory Slipway owns: workspaces, file-backend state, the local cluster")
	pf.StringVar(&g.backend, "backend", "", "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else a file backend in <dir>/state)")
	pf.BoolVar(&g.localRecords, "local-records", false, "accept a backend Slipway keeps no records in (gs://, azblob://, Pulumi Cloud): release history, runs and approvals stay in <dir> on this machine")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON (the same as --format json)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log engine activity")
	pf.StringVar(&g.cacheDir, "cache-dir", "", "toolchain build cache (default $SLIPWAY_CACHE_DIR or ~/.cache/slipway)")
	pf.BoolVar(&g.forceUnlock, "force-unlock", false, "remove a stack lock whose owner cannot be proven dead (only when you know no update runs)")
	pf.BoolVar(&g.repair, "repair", false, "let recovery clear interrupted operations on resources it cannot re-adopt (may orphan them)")
	g.registerTelemetry(root)
	pf.StringArrayVar(&g.plugins, "plugin", nil, "resource plugin binary NAME=PATH that Slipway does not build, e.g. aws=/opt/pulumi-resource-aws (repeatable)")
	pf.BoolVar(&g.pluginDownload, "allow-plugin-download", false, "let the engine download a resource plugin that is neither installed nor given with --plugin (needs a network; off by default)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput("%v", err) })
	root.AddCommand(newClusterCmd(g), newToolchainCmd(g), newDemoCmd(g), newDriftCmd(g), newEphemeralCmd(g), newGCCmd(g),
		newRollbackCmd(g), newPromoteCmd(g), newRenderCmd(g), newSchemaCmd(g), newPolicyCmd(g), newParamsCmd(g),
		newOperatorCmd(g), newRunnerCmd(g), newFleetCmd(g), newServeCmd(g), newDoraCmd(g), newDoctorCmd(g), newImageCmd(g))
	for _, op := range []string{"preview", "up", "refresh", "destroy"} {
		root.AddCommand(newOpCmd(g, op))
	}
	return root, g
}

// addFormat adds --format to a verb that renders reports in formats.
func (g *globals) addFormat(cmd *cobra.Command, formats ...report.Format) {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	cmd.Flags().StringVar(&g.formatFlag, "format", "", "output format on stdout: "+strings.Join(names, ", ")+
		" (default text; json is --json's envelope; progress and errors stay on stderr)")
	cmd.Annotations = map[string]string{"formats": strings.Join(names, ",")}
}

// addDefinition adds --definition to a verb that takes no parameters.
func (g *globals) addDefinition(cmd *cobra.Command, definition *string) {
	cmd.Flags().StringVar(definition, "definition", "", fmt.Sprintf("environment definition whose project to use: %s (default %s)",
		strings.Join(g.cfg.definitionNames(), ", "), g.cfg.definitionNames()[0]))
}

// resolveFormat reads --format and --json (an alias of --format json).
func (g *globals) resolveFormat(cmd *cobra.Command) error {
	if cmd.Flags().Lookup("format") == nil || !cmd.Flags().Changed("format") {
		if g.json {
			g.format = report.JSON
		}
		return nil
	}
	f, err := report.ParseFormat(g.formatFlag)
	if err == nil && !slices.Contains(strings.Split(cmd.Annotations["formats"], ","), string(f)) {
		err = fmt.Errorf("--format %s is not a format of %s; use one of %s", f, strings.TrimPrefix(cmd.CommandPath(), g.cfg.name+" "), strings.ReplaceAll(cmd.Annotations["formats"], ",", ", "))
	}
	if err != nil {
		var fe *report.FormatError
		if errors.As(err, &fe) {
			return badInput("--format %q is not a format; use one of %s", fe.Value, strings.ReplaceAll(cmd.Annotations["formats"], ",", ", "))
		}
		return badInput("%v", err)
	}
	if g.json && f != report.JSON {
		return badInput("--json and --format %s ask for two outputs; give one (--json is --format json)", f)
	}
	g.format = f
	g.json = f == report.JSON
	return nil
}

// addSecrets adds values to mask in every output of the run.
func (g *globals) addSecrets(values ...string) {
	g.secrets = append(g.secrets, values...)
	g.masker = g.masker.With(values...)
}

// mask replaces the run's secret values, in every form package mask
// knows, in s.
func (g *globals) mask(s string) string { return g.masker.String(s) }

// writeReport renders entries in the run's format on stdout (nothing with
// --json: the envelope carries them).
func (g *globals) writeReport(entries ...report.Entry) {
	if g.json {
		return
	}
	for i := range entries {
		entries[i].Secrets = append(entries[i].Secrets, g.secrets...)
	}
	if err := report.Write(g.out, g.format, entries); err != nil {
		fmt.Fprintf(g.errw, "%s: writing the %s report: %v\n", g.cfg.name, g.format, err)
	}
}

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

	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/clustercmd"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/envcmd"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/fleetcmd"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/lifecyclecmd"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/policycmd"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/rolloutcmd"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/servecmd"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// Option configures the command line (Main, Run).
type Option func(*app.Config)

// Definitions registers environment definitions; --definition NAME selects one
// (default: the first). At least one is required; names must be unique.
func Definitions(builders ...stacks.Builder) Option {
	return func(c *app.Config) { c.Definitions = append(c.Definitions, builders...) }
}

// Name sets the binary's name, used in usage texts, in error messages
// ("<name>: ...") and as the JSON envelope's command prefix (default
// "slipway").
func Name(name string) Option { return func(c *app.Config) { c.Name = name } }

// PolicyPacks adds packs a team defines to Slipway's own (aws, kubernetes,
// cost): --policy selects them by name, and the binary serves them as the
// engine's policy analyzer (Main).
func PolicyPacks(packs ...*policypacks.Pack) Option {
	return func(c *app.Config) { c.Packs = append(c.Packs, packs...) }
}

// reserved are the flag names of the command line itself; a definition's
// flag shorthand may not take one.
var reserved = []string{"allow-plugin-download", "approval-public-key-file", "approval-wait", "approve", "backend", "cache-dir", "commit", "commit-time", "concurrency", "definition", "dir", "dry-run", "env", "expect-no-changes", "force-unlock", "format",
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
func newConfig(opts []Option) (*app.Config, error) {
	c := &app.Config{Name: "slipway"}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	var probs []string
	if !nameRE.MatchString(c.Name) {
		probs = append(probs, fmt.Sprintf("Name(%q) must be a command name such as \"shopctl\"", c.Name))
	}
	if len(c.Definitions) == 0 {
		probs = append(probs, "no definition registered; pass cli.Definitions(yourDefinition)")
	}
	seen := map[string]bool{}
	for i, b := range c.Definitions {
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
	for i, p := range c.Packs {
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
		policypacks.ServeIfAnalyzer(c.AllPacks()...)
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
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return app.ExitError
	}
	root, g := newRoot(c, stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	_, code := app.Classify(err)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, g.Mask(err.Error()))
	}
	g.CloseNotifier()
	g.FinishTelemetry(err)
	if g.JSON && (cmd == nil || cmd.Name() != "schema") {
		name := c.Name
		if cmd != nil {
			name = strings.TrimPrefix(cmd.CommandPath(), c.Name+" ")
		}
		g.WriteEnvelope(stdout, name, err)
	}
	return code
}

func newRoot(c *app.Config, stdout, stderr io.Writer) (*cobra.Command, *app.Globals) {
	g := &app.Globals{Config: c, In: os.Stdin, Out: stdout, Errw: stderr, Format: report.Text}
	root := &cobra.Command{
		Use:           c.Name,
		Short:         "Provision, check and observe environments through the Pulumi engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.StartTelemetry(cmd); err != nil {
				return err
			}
			return g.ResolveFormat(cmd)
		},
	}
	if len(c.Definitions) > 0 {
		root.Long = fmt.Sprintf("%s.\n\nDefinitions (--definition): %s (default %s); see `%s params`.", root.Short,
			strings.Join(c.DefinitionNames(), ", "), c.DefinitionNames()[0], c.Name)
	}
	g.RegisterFlags(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return app.BadInput("%v", err) })
	root.AddCommand(newSchemaCmd(g))
	for _, family := range [][]*cobra.Command{envcmd.Commands(g), lifecyclecmd.Commands(g), rolloutcmd.Commands(g), policycmd.Commands(g),
		servecmd.Commands(g), fleetcmd.Commands(g), clustercmd.Commands(g)} {
		root.AddCommand(family...)
	}
	return root, g
}

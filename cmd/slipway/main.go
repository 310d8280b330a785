// Command slipway is the thin CI front end of the Slipway SDK: it previews,
// applies, refreshes and destroys environments through the Pulumi engine,
// runs a local Kubernetes control plane, and runs the demo.
//
// Exit codes: 0 success, 1 error, 2 success with changes or drift found,
// 3 blocked by policy (nothing applied), 4 another update holds the stack.
// With --json every verb prints one envelope (see `slipway schema`).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/policypacks/all"
)

// globals are the persistent flags.
type globals struct {
	dir         string
	backend     string
	json        bool
	verbose     bool
	cacheDir    string
	forceUnlock bool
	repair      bool
	plugins     []string
	// items collect each environment's outcome for the --json envelope.
	items []item
}

func main() {
	// The engine runs this binary as its policy analyzer plugin (see policypacks).
	all.ServeIfAnalyzer()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	return runIO(ctx, args, os.Stdout, os.Stderr)
}

// runIO runs the CLI and maps the outcome to an exit code: the error (if
// any) is printed on stderr, and with --json the envelope on stdout.
func runIO(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root, g := newRoot()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	_, code := classify(err)
	if err != nil {
		fmt.Fprintln(stderr, "slipway:", err)
	}
	if g.json && (cmd == nil || cmd.Name() != "schema") {
		name := "slipway"
		if cmd != nil {
			name = strings.TrimPrefix(cmd.CommandPath(), "slipway ")
		}
		g.writeEnvelope(stdout, name, err)
	}
	return code
}

func newRoot() (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:           "slipway",
		Short:         "Provision, check and observe environments through the Pulumi engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelWarn
			if g.verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.dir, "dir", ".slipway", "directory Slipway owns: workspaces, file-backend state, the local cluster")
	pf.StringVar(&g.backend, "backend", "", "Pulumi backend URL (default: file backend in <dir>/state)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log engine activity")
	pf.StringVar(&g.cacheDir, "cache-dir", "", "toolchain build cache (default $SLIPWAY_CACHE_DIR or ~/.cache/slipway)")
	pf.BoolVar(&g.forceUnlock, "force-unlock", false, "remove a stack lock whose owner cannot be proven dead (only when you know no update runs)")
	pf.BoolVar(&g.repair, "repair", false, "let recovery clear interrupted operations on resources it cannot re-adopt (may orphan them)")
	pf.StringArrayVar(&g.plugins, "plugin", nil, "resource plugin binary NAME=PATH that Slipway does not build, e.g. aws=/opt/pulumi-resource-aws (repeatable)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput("%v", err) })
	root.AddCommand(newClusterCmd(g), newToolchainCmd(g), newDemoCmd(g), newDriftCmd(g), newEphemeralCmd(g), newGCCmd(g),
		newRollbackCmd(g), newPromoteCmd(g), newRenderCmd(g), newSchemaCmd())
	for _, op := range []string{"preview", "up", "refresh", "destroy"} {
		root.AddCommand(newOpCmd(g, op))
	}
	return root, g
}

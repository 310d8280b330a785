// Command slipway is the thin CI front end of the Slipway SDK: it previews,
// applies, refreshes and destroys environments through the Pulumi engine,
// runs a local Kubernetes control plane, and runs the demo.
//
// Exit codes: 0 ok, 1 failure, 2 changes or drift found (preview
// --expect-no-changes, drift).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/policypacks/all"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// globals are the persistent flags.
type globals struct {
	dir      string
	backend  string
	json     bool
	verbose  bool
	cacheDir string
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
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != 2 {
			fmt.Fprintln(os.Stderr, "slipway:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "slipway:", err)
	return 1
}

func newRoot() *cobra.Command {
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
	root.AddCommand(newClusterCmd(g), newToolchainCmd(g), newDemoCmd(g), newDriftCmd(g), newEphemeralCmd(g), newGCCmd(g),
		newRollbackCmd(g), newPromoteCmd(g), newRenderCmd(g))
	for _, op := range []string{"preview", "up", "refresh", "destroy"} {
		root.AddCommand(newOpCmd(g, op))
	}
	return root
}

package envcmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
)

// newRenderCmd is the render verb.
func newRenderCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	var out string
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the environment's Kubernetes objects to YAML files (for Argo CD / Flux); touches no cluster or backend",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return app.BadInput("--out is required: the directory to write manifests to")
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return app.BadInput("--out %q: %v", out, err)
			}
			f.Render = abs
			sp, err := f.Parse(g, false)
			if err != nil {
				return err
			}
			res, err := render(cmd.Context(), g, sp.Progs[0])
			g.PrintResult(res)
			g.Add(app.Item{Environment: sp.Names[0], Operation: "render", Status: app.StatusOf(err), Result: res, Error: app.ErrJSON(err)})
			if err == nil && !g.JSON {
				fmt.Fprintf(g.Out, "manifests written to %s\n", out)
			}
			return err
		},
	}
	f.Register(g, cmd, false)
	cmd.Flags().StringVar(&out, "out", "", "directory for the YAML manifests")
	return cmd
}

// render runs the environment's program in render mode against a
// throw-away file backend, so no stack is left behind and every render
// writes every manifest.
func render(ctx context.Context, g *app.Globals, prog automation.Program) (*outcome.Result, error) {
	tmp, err := os.MkdirTemp("", "slipway-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	opts := []automation.EngineOption{automation.WithDir(tmp), automation.WithResolver(g.Resolver()), automation.WithPassphrase("render")}
	e, err := automation.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	st, err := e.UpsertStack(ctx, prog)
	if err != nil {
		return nil, err
	}
	return st.Up(ctx)
}

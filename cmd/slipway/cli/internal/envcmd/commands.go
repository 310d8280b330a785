// Package envcmd is the environment verbs: preview, up, refresh and destroy,
// render, and params (the definitions' parameters).
package envcmd

import (
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	return []*cobra.Command{
		newOpCmd(g, "preview"),
		newOpCmd(g, "up"),
		newOpCmd(g, "refresh"),
		newOpCmd(g, "destroy"),
		newRenderCmd(g),
		newParamsCmd(g),
	}
}

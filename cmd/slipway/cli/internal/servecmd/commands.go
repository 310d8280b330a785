// Package servecmd is the serve verb (dashboard and approvals API) and the
// dora verb (DORA metrics from the release history).
package servecmd

import (
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	return []*cobra.Command{
		newServeCmd(g),
		newDoraCmd(g),
	}
}

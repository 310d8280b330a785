// Package fleetcmd is the fleet verbs: operator (and install), runner,
// fleet, and image (the fleet's container image).
package fleetcmd

import (
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	return []*cobra.Command{
		newOperatorCmd(g),
		newRunnerCmd(g),
		newFleetCmd(g),
		newImageCmd(g),
	}
}

// Package lifecyclecmd is the release lifecycle verbs: drift, ephemeral,
// gc, rollback and promote.
package lifecyclecmd

import (
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	return []*cobra.Command{
		newDriftCmd(g),
		newEphemeralCmd(g),
		newGCCmd(g),
		newRollbackCmd(g),
		newPromoteCmd(g),
	}
}

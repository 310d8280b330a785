// Package policycmd is the policy verb: check (the packs on environments'
// programs under mocks) and list.
package policycmd

import (
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	return []*cobra.Command{
		newPolicyCmd(g),
	}
}

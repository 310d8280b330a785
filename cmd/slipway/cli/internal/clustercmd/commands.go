// Package clustercmd is the local machine's verbs: cluster, toolchain,
// demo and doctor.
package clustercmd

import (
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	return []*cobra.Command{
		newClusterCmd(g),
		newToolchainCmd(g),
		newDemoCmd(g),
		newDoctorCmd(g),
	}
}

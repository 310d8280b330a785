package cli

import (
	_ "embed"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Exit codes, the contract with CI pipelines; Run returns them.
const (
	// ExitOK: the command succeeded and found nothing to report.
	ExitOK = app.ExitOK
	// ExitError: the command failed (bad input, engine error, smoke check, ...).
	ExitError = app.ExitError
	// ExitChanges: the command succeeded and found changes or drift.
	ExitChanges = app.ExitChanges
	// ExitPolicy: a mandatory policy blocked the command; nothing was applied.
	ExitPolicy = app.ExitPolicy
	// ExitLocked: another update holds the stack's lock.
	ExitLocked = app.ExitLocked
)

// SchemaVersion is the version of the --json envelope (schema/envelope.v1.json).
const SchemaVersion = app.SchemaVersion

//go:embed schema/envelope.v1.json
var envelopeSchema []byte

// Schema returns the JSON Schema of the --json envelope (what the schema
// verb prints).
func Schema() []byte { return append([]byte(nil), envelopeSchema...) }

// newSchemaCmd prints the envelope's schema.
func newSchemaCmd(g *app.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the --json envelope",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := g.Out.Write(envelopeSchema)
			return err
		},
	}
}

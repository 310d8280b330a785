package cli

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
)

// Exit codes, the contract with CI pipelines.
const (
	// ExitOK: the command succeeded and found nothing to report.
	ExitOK = 0
	// ExitError: the command failed (bad input, engine error, smoke check, ...).
	ExitError = 1
	// ExitChanges: the command succeeded and found changes or drift.
	ExitChanges = 2
	// ExitPolicy: a mandatory policy blocked the command; nothing was applied.
	ExitPolicy = 3
	// ExitLocked: another update holds the stack's lock.
	ExitLocked = 4
)

// SchemaVersion is the version of the --json envelope (schema/envelope.v1.json).
const SchemaVersion = 1

//go:embed schema/envelope.v1.json
var envelopeSchema []byte

// Schema returns the JSON Schema of the --json envelope (what the schema
// verb prints).
func Schema() []byte { return append([]byte(nil), envelopeSchema...) }

// envelope is the one JSON document every verb prints with --json.
type envelope struct {
	SchemaVersion int        `json:"schemaVersion"`
	Command       string     `json:"command"`
	Results       []item     `json:"results"`
	Error         *errorJSON `json:"error"`
}

// item is one environment's (or one stage's, one tool's) outcome.
type item struct {
	// Environment is the environment (stack) or promotion stage name.
	Environment string `json:"environment,omitempty"`
	Operation   string `json:"operation"`
	// Status is succeeded, changes, failed, blocked or locked.
	Status     string                `json:"status"`
	Result     *outcome.Result       `json:"result,omitempty"`
	Preview    *outcome.Result       `json:"preview,omitempty"`
	Drift      *outcome.Drift        `json:"drift,omitempty"`
	Ephemeral  *automation.Ephemeral `json:"ephemeral,omitempty"`
	Release    *releases.Record      `json:"release,omitempty"`
	RolledBack bool                  `json:"rolledBack,omitempty"`
	Rollback   *outcome.Result       `json:"rollback,omitempty"`
	Cluster    any                   `json:"cluster,omitempty"`
	Tools      any                   `json:"tools,omitempty"`
	Image      *imageJSON            `json:"image,omitempty"`
	Policy     *policypacks.Report   `json:"policy,omitempty"`
	Rules      []rule                `json:"rules,omitempty"`
	Params     *paramsDoc            `json:"params,omitempty"`
	Dora       *dora.Report          `json:"dora,omitempty"`
	Error      *errorJSON            `json:"error,omitempty"`
}

// errorJSON is an error for machines: a stable code, the exit code it maps
// to, and the message printed on stderr.
type errorJSON struct {
	Code     string `json:"code"`
	ExitCode int    `json:"exitCode"`
	Message  string `json:"message"`
}

// classify maps an error to its stable code and exit code.
func classify(err error) (string, int) {
	var ee *exitError
	switch {
	case err == nil:
		return "", ExitOK
	case errors.As(err, &ee) && ee.code != ExitError:
		return ee.kind, ee.code
	case automation.IsPolicyBlocked(err):
		return "policy_blocked", ExitPolicy
	case automation.IsStackLocked(err):
		return "stack_locked", ExitLocked
	case automation.IsRepairRequired(err):
		return "repair_required", ExitError
	case automation.IsChangesFound(err):
		return "changes_found", ExitChanges
	case automation.IsUnknownStack(err):
		return "unknown_environment", ExitError
	case automation.IsNotEphemeral(err):
		return "not_ephemeral", ExitError
	case errors.As(err, new(*inputError)), errors.As(err, new(*all.UnknownPackError)):
		return "invalid_input", ExitError
	}
	return "error", ExitError
}

func errJSON(err error) *errorJSON {
	if err == nil {
		return nil
	}
	code, exit := classify(err)
	return &errorJSON{Code: code, ExitCode: exit, Message: err.Error()}
}

// statusOf names an outcome in an item.
func statusOf(err error) string {
	switch _, code := classify(err); {
	case err == nil:
		return "succeeded"
	case code == ExitChanges:
		return "changes"
	case code == ExitPolicy:
		return "blocked"
	case code == ExitLocked:
		return "locked"
	}
	return "failed"
}

// worst combines the exit codes of several environments: any error wins,
// then a held lock, then a policy block, then changes.
func worst(codes ...int) int {
	rank := map[int]int{ExitOK: 0, ExitChanges: 1, ExitPolicy: 2, ExitLocked: 3, ExitError: 4}
	out := ExitOK
	for _, c := range codes {
		if rank[c] > rank[out] {
			out = c
		}
	}
	return out
}

// inputError is bad input found before anything was touched.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an exit code other than 1 (and its error code) through
// cobra, e.g. changes found or a policy block in one of several environments.
type exitError struct {
	code int
	kind string
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// add records an item for the --json envelope.
func (g *globals) add(it item) { g.items = append(g.items, it) }

// writeEnvelope prints the envelope of the finished command.
func (g *globals) writeEnvelope(w io.Writer, command string, err error) {
	env := envelope{SchemaVersion: SchemaVersion, Command: command, Results: g.items, Error: errJSON(err)}
	if env.Results == nil {
		env.Results = []item{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(env)
	// Errors and results may carry a secret (an engine's message): masked
	// in the encoded text, where it is JSON-escaped, and mask's forms
	// include the JSON-escaped one.
	_, _ = io.WriteString(w, g.mask(b.String()))
}

func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the --json envelope",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := g.out.Write(envelopeSchema)
			return err
		},
	}
}

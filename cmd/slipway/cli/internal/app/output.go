package app

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/rollout"
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

// SchemaVersion is the version of the --json envelope (cmd/slipway/cli/schema/envelope.v1.json).
const SchemaVersion = 1

// envelope is the one JSON document every verb prints with --json.
type envelope struct {
	SchemaVersion int        `json:"schemaVersion"`
	Command       string     `json:"command"`
	Results       []Item     `json:"results"`
	Error         *ErrorJSON `json:"error"`
}

// Item is one environment's (or one stage's, one tool's) outcome.
type Item struct {
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
	Image      *ImageJSON            `json:"image,omitempty"`
	Policy     *policypacks.Report   `json:"policy,omitempty"`
	Rules      []Rule                `json:"rules,omitempty"`
	Params     *ParamsDoc            `json:"params,omitempty"`
	Dora       *dora.Report          `json:"dora,omitempty"`
	// Rollout is the environment's rollout record (slipway rollout).
	Rollout *rollout.State `json:"rollout,omitempty"`
	Error   *ErrorJSON     `json:"error,omitempty"`
}

// ErrorJSON is an error for machines: a stable code, the exit code it maps
// to, and the message printed on stderr.
type ErrorJSON struct {
	Code     string `json:"code"`
	ExitCode int    `json:"exitCode"`
	Message  string `json:"message"`
}

// Classify maps an error to its stable code and exit code.
func Classify(err error) (string, int) {
	var ee *CodedError
	switch {
	case err == nil:
		return "", ExitOK
	case errors.As(err, &ee) && ee.Code != ExitError:
		return ee.Kind, ee.Code
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
	case errors.As(err, new(*InputError)), errors.As(err, new(*all.UnknownPackError)):
		return "invalid_input", ExitError
	}
	return "error", ExitError
}

// ErrJSON is err as the envelope carries it (nil for nil).
func ErrJSON(err error) *ErrorJSON {
	if err == nil {
		return nil
	}
	code, exit := Classify(err)
	return &ErrorJSON{Code: code, ExitCode: exit, Message: err.Error()}
}

// StatusOf names an outcome in an item.
func StatusOf(err error) string {
	switch _, code := Classify(err); {
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

// Worst combines the exit codes of several environments: any error wins,
// then a held lock, then a policy block, then changes.
func Worst(codes ...int) int {
	rank := map[int]int{ExitOK: 0, ExitChanges: 1, ExitPolicy: 2, ExitLocked: 3, ExitError: 4}
	out := ExitOK
	for _, c := range codes {
		if rank[c] > rank[out] {
			out = c
		}
	}
	return out
}

// InputError is bad input found before anything was touched; get it with
// errors.As.
type InputError struct{ msg string }

// Error is the message.
func (e *InputError) Error() string { return e.msg }

// BadInput is an InputError with a formatted message.
func BadInput(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// CodedError carries an exit code other than 1 (and its error code) through
// cobra, e.g. changes found or a policy block in one of several environments;
// get it with errors.As.
type CodedError struct {
	Code int
	Kind string
	Err  error
}

// Error is the wrapped error's message.
func (e *CodedError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *CodedError) Unwrap() error { return e.Err }

// Add records an item for the --json envelope.
func (g *Globals) Add(it Item) { g.items = append(g.items, it) }

// WriteEnvelope prints the envelope of the finished command.
func (g *Globals) WriteEnvelope(w io.Writer, command string, err error) {
	env := envelope{SchemaVersion: SchemaVersion, Command: command, Results: g.items, Error: ErrJSON(err)}
	if env.Results == nil {
		env.Results = []Item{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(env)
	// Errors and results may carry a secret (an engine's message): masked
	// in the encoded text, where it is JSON-escaped, and mask's forms
	// include the JSON-escaped one.
	_, _ = io.WriteString(w, g.Mask(b.String()))
}

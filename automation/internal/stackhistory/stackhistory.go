// Package stackhistory answers `pulumi stack history --json`, which the
// Automation API runs after every up, refresh and destroy to fill in the
// result's summary, from the update history a DIY backend keeps in its own
// store (statestore.UpdateHistory) instead of a CLI process: the entries
// are parsed into the Automation API's auto.UpdateSummary exactly as the
// CLI renders them.
//
// The one thing the store cannot give is a secret configuration value in
// plain text: the CLI decrypts those when asked to (--show-secrets, the
// Automation API's default), with the stack's secrets provider. Such a
// request for an entry holding a secret is left to the CLI (see Command),
// so answers never differ; Slipway's own operations ask without secrets.
package stackhistory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
)

// entry is one history file of a DIY backend (Pulumi's backend.UpdateInfo).
type entry struct {
	Version         int               `json:"version"`
	Kind            string            `json:"kind"`
	StartTime       int64             `json:"startTime"`
	Message         string            `json:"message"`
	Environment     map[string]string `json:"environment"`
	Config          config.Map        `json:"config"`
	Result          string            `json:"result"`
	EndTime         int64             `json:"endTime"`
	ResourceChanges map[string]int    `json:"resourceChanges"`
}

// inProgress is the result of an update that has not ended.
const inProgress = "in-progress"

// timeLayout is how the CLI prints history times (RFC 5424, milliseconds).
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Summaries parses history entries (statestore.UpdateHistory) into what
// `pulumi stack history --json` prints for them, in the same order. With
// showSecrets, an entry holding a secret configuration value, which only
// the CLI can decrypt, makes it return ok=false.
func Summaries(entries [][]byte, showSecrets bool) (_ []auto.UpdateSummary, ok bool, err error) {
	out := make([]auto.UpdateSummary, 0, len(entries))
	for _, b := range entries {
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, false, fmt.Errorf("stackhistory: a history entry does not parse: %w", err)
		}
		if showSecrets && e.Config.HasSecureValue() {
			return nil, false, nil
		}
		s := auto.UpdateSummary{Version: e.Version, Kind: e.Kind, StartTime: format(e.StartTime), Message: e.Message,
			Environment: e.Environment, Config: auto.ConfigMap{}, Result: e.Result}
		for k, v := range e.Config {
			cv := auto.ConfigValue{Secret: v.Secure()}
			if !v.Secure() {
				// As the CLI: a value it cannot read is printed as this marker.
				if cv.Value, err = v.Value(nil); err != nil {
					cv.Value = "ERROR_UNABLE_TO_DECRYPT"
				}
			}
			s.Config[k.String()] = cv
		}
		if e.Result != inProgress {
			end := format(e.EndTime)
			changes := map[string]int{}
			for op, n := range e.ResourceChanges {
				changes[op] = n
			}
			s.EndTime, s.ResourceChanges = &end, &changes
		}
		out = append(out, s)
	}
	return out, true, nil
}

func format(unix int64) string { return time.Unix(unix, 0).UTC().Format(timeLayout) }

// Reader returns the history entries of a stack (statestore.UpdateHistory),
// and ok=false when its store cannot say (a backend without a driver, a
// stack it does not hold, an entry it cannot read).
type Reader func(ctx context.Context, stack string, pageSize, page int) (entries [][]byte, ok bool)

// Command is a pulumi command that answers `stack history --json` from the
// backend's store through Read, with no process, as the CLI would; every
// other command, and a history it cannot answer exactly (a flag it does
// not know, a store that cannot say, a secret to decrypt), goes to the
// PulumiCommand it wraps.
type Command struct {
	auto.PulumiCommand
	Read Reader
}

// Run implements auto.PulumiCommand.
func (c Command) Run(ctx context.Context, workdir string, stdin io.Reader, out, errOut []io.Writer, env []string, args ...string) (string, string, int, error) {
	if q, ok := parse(args); ok && c.Read != nil {
		if entries, ok := c.Read(ctx, q.stack, q.pageSize, q.page); ok {
			sums, ok, err := Summaries(entries, q.showSecrets)
			if b, merr := json.Marshal(sums); ok && err == nil && merr == nil {
				for _, w := range out {
					_, _ = w.Write(b)
				}
				return string(b), "", 0, nil
			}
		}
	}
	return c.PulumiCommand.Run(ctx, workdir, stdin, out, errOut, env, args...)
}

// query is what a `stack history --json` command asks for.
type query struct {
	stack          string
	showSecrets    bool
	pageSize, page int
}

// cliPageSize and the first page are what the CLI lists without
// --page-size and --page.
const cliPageSize = 10

// parse reads the arguments the Automation API's Stack.History passes:
// stack history --json [--show-secrets] [--page-size N --page M] --stack S
// (the flags in any order, --non-interactive allowed); anything else is
// not ok.
func parse(args []string) (query, bool) {
	q := query{pageSize: cliPageSize, page: 1}
	if len(args) > 0 && args[0] == "--non-interactive" {
		args = args[1:]
	}
	if len(args) < 3 || args[0] != "stack" || args[1] != "history" {
		return q, false
	}
	json := false
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch a {
		case "--json", "-j":
			json = true
		case "--show-secrets":
			q.showSecrets = true
		case "--non-interactive":
		case "--stack", "-s", "--page-size", "--page":
			if i+1 >= len(args) {
				return q, false
			}
			i++
			if a == "--stack" || a == "-s" {
				q.stack = args[i]
				continue
			}
			n, err := strconv.Atoi(args[i])
			if err != nil {
				return q, false
			}
			if a == "--page" {
				q.page = n
			} else {
				q.pageSize = n
			}
		default:
			return q, false
		}
	}
	return q, json && q.stack != ""
}

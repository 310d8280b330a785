package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"golang.org/x/term"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/report"
)

// ReportResults prints each environment's result and returns the combined outcome.
func (g *Globals) ReportResults(op string, results []automation.EnvResult) error {
	var codes []int
	var failed []string
	var entries []report.Entry
	reported := op == "preview" || op == "up"
	for _, r := range results {
		if reported {
			entries = append(entries, report.Entry{Environment: r.Stack, Operation: report.Operation(op), Result: r.Result, Err: r.Err})
		} else {
			g.PrintResult(r.Result)
		}
		_, code := Classify(r.Err)
		codes = append(codes, code)
		g.Add(Item{Environment: r.Stack, Operation: op, Status: StatusOf(r.Err), Result: r.Result, Error: ErrJSON(r.Err)})
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.Stack, r.Err))
		}
	}
	if reported {
		g.WriteReport(entries...)
	}
	code := Worst(codes...)
	if code == ExitOK {
		return nil
	}
	if len(results) == 1 {
		return results[0].Err
	}
	return &CodedError{Code: code, Kind: CodeKind(code), Err: fmt.Errorf("%d of %d environment(s) did not succeed:\n  %s", len(failed), len(results), strings.Join(failed, "\n  "))}
}

// CodeKind names an exit code in the JSON error object.
func CodeKind(code int) string {
	return map[int]string{ExitChanges: "changes_found", ExitPolicy: "policy_blocked", ExitLocked: "stack_locked"}[code]
}

// Progress prints one line per resource step on stderr when it is a
// terminal, nothing in CI.
func (g *Globals) Progress() func(events.EngineEvent) {
	f, ok := g.Errw.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(ev events.EngineEvent) {
		if ev.ResourcePreEvent != nil {
			md := ev.ResourcePreEvent.Metadata
			fmt.Fprintf(g.Errw, "  %-8s %s\n", md.Op, md.URN)
		}
	}
}

// PrintResult prints one result as text (report's text renderer, the one
// preview, up and drift use), with --secret values masked; nothing with --json.
func (g *Globals) PrintResult(res *outcome.Result) {
	if res == nil {
		return
	}
	g.WriteReport(report.Entry{Environment: res.Stack, Operation: report.Operation(res.Operation), Result: res})
}

// FirstLine returns the last line of an engine policy message (the first is
// the policy's description).
func FirstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

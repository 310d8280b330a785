package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/report"
)

func newOpCmd(g *globals, op string) *cobra.Command {
	var f envFlags
	var expectNoChanges, remove bool
	var concurrency, parallel int
	var commit commitFlags
	var confirm confirmFlags
	short := map[string]string{
		"preview": "Show the changes an up would make (exit 2 with --expect-no-changes and changes)",
		"up":      "Create or update environments",
		"refresh": "Read live state into existing environments' state (exit 2 with --expect-no-changes and drift)",
		"destroy": "Delete every resource of existing environments",
	}[op]
	cmd := &cobra.Command{
		Use:   op,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if concurrency < 1 {
				return badInput("--concurrency %d must be at least 1", concurrency)
			}
			if parallel < 0 {
				return badInput("--parallel %d must be at least 1 (or 0 for the engine's default)", parallel)
			}
			var upOpts []optup.Option
			if op == "up" {
				var err error
				if upOpts, err = commit.upOptions(); err != nil {
					return err
				}
			}
			if op == "destroy" {
				if err := confirm.early(op); err != nil {
					return err
				}
			}
			e, _, progs, err := prepare(g, cmd.Context(), &f, true)
			if err != nil {
				return err
			}
			if op == "destroy" {
				var what []string
				for _, p := range progs {
					what = append(what, fmt.Sprintf("environment %s (stack %s/%s)", p.Stack, p.Project, p.Stack))
				}
				if err := confirm.ask(cmd.Context(), g, op, what); err != nil {
					return err
				}
			}
			return g.reportResults(op, e.Each(cmd.Context(), progs, opOf(op, g.progress(), parallel, expectNoChanges, remove, upOpts...), concurrency))
		},
	}
	f.register(g, cmd, op == "preview" || op == "up")
	if op == "preview" || op == "up" {
		g.addFormat(cmd, report.Formats()...)
	}
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "with several --env names (comma-separated): environments run at once")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "resource operations the engine runs at once in each environment (0: the engine's default)")
	if op == "preview" || op == "refresh" {
		cmd.Flags().BoolVar(&expectNoChanges, "expect-no-changes", false, "exit 2 when there are changes (nothing is written)")
	}
	if op == "destroy" {
		cmd.Flags().BoolVar(&remove, "remove", false, "also remove the stack from the backend")
		confirm.register(cmd)
	}
	if op == "up" {
		commit.register(cmd)
	}
	return cmd
}

// opOf builds the operation of a verb from its flags; each verb takes only
// the options it supports (up adds up, e.g. the commit it applies).
func opOf(op string, onEvent func(events.EngineEvent), parallel int, expectNoChanges, remove bool, up ...optup.Option) automation.Op {
	switch op {
	case "preview":
		o := []optpreview.Option{optpreview.OnEvent(onEvent), optpreview.Parallel(parallel)}
		if expectNoChanges {
			o = append(o, optpreview.ExpectNoChanges())
		}
		return automation.Preview(o...)
	case "up":
		return automation.Up(append([]optup.Option{optup.OnEvent(onEvent), optup.Parallel(parallel)}, up...)...)
	case "refresh":
		o := []optrefresh.Option{optrefresh.OnEvent(onEvent), optrefresh.Parallel(parallel)}
		if expectNoChanges {
			o = append(o, optrefresh.ExpectNoChanges())
		}
		return automation.Refresh(o...)
	default:
		o := []optdestroy.Option{optdestroy.OnEvent(onEvent), optdestroy.Parallel(parallel)}
		if remove {
			o = append(o, optdestroy.RemoveStack())
		}
		return automation.Destroy(o...)
	}
}

// reportResults prints each environment's result and returns the combined outcome.
func (g *globals) reportResults(op string, results []automation.EnvResult) error {
	var codes []int
	var failed []string
	var entries []report.Entry
	reported := op == "preview" || op == "up"
	for _, r := range results {
		if reported {
			entries = append(entries, report.Entry{Environment: r.Stack, Operation: report.Operation(op), Result: r.Result, Err: r.Err})
		} else {
			g.printResult(r.Result)
		}
		_, code := classify(r.Err)
		codes = append(codes, code)
		g.add(item{Environment: r.Stack, Operation: op, Status: statusOf(r.Err), Result: r.Result, Error: errJSON(r.Err)})
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.Stack, r.Err))
		}
	}
	if reported {
		g.writeReport(entries...)
	}
	code := worst(codes...)
	if code == ExitOK {
		return nil
	}
	if len(results) == 1 {
		return results[0].Err
	}
	return &exitError{code: code, kind: codeKind(code), err: fmt.Errorf("%d of %d environment(s) did not succeed:\n  %s", len(failed), len(results), strings.Join(failed, "\n  "))}
}

// codeKind names an exit code in the JSON error object.
func codeKind(code int) string {
	return map[int]string{ExitChanges: "changes_found", ExitPolicy: "policy_blocked", ExitLocked: "stack_locked"}[code]
}

// progress prints one line per resource step on stderr when it is a
// terminal, nothing in CI.
func (g *globals) progress() func(events.EngineEvent) {
	f, ok := g.errw.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(ev events.EngineEvent) {
		if ev.ResourcePreEvent != nil {
			md := ev.ResourcePreEvent.Metadata
			fmt.Fprintf(g.errw, "  %-8s %s\n", md.Op, md.URN)
		}
	}
}

// printResult prints one result as text (report's text renderer, the one
// preview, up and drift use), with --secret values masked; nothing with --json.
func (g *globals) printResult(res *outcome.Result) {
	if res == nil {
		return
	}
	g.writeReport(report.Entry{Environment: res.Stack, Operation: report.Operation(res.Operation), Result: res})
}

// firstLine returns the last line of an engine policy message (the first is
// the policy's description).
func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

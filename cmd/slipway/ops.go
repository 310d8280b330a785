package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slipwayhq/slipway/automation"
)

func newOpCmd(g *globals, op string) *cobra.Command {
	var f envFlags
	var expectNoChanges, remove bool
	var parallel int
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
			if parallel < 1 {
				return badInput("--parallel %d must be at least 1", parallel)
			}
			e, _, progs, err := g.prepare(cmd.Context(), &f, true)
			if err != nil {
				return err
			}
			opts := []automation.Option{automation.OnEvent(g.progress())}
			if expectNoChanges {
				opts = append(opts, automation.ExpectNoChanges())
			}
			if remove {
				opts = append(opts, automation.RemoveStack())
			}
			run := map[string]func(...automation.Option) automation.Op{
				"preview": automation.Preview, "up": automation.Up, "refresh": automation.Refresh, "destroy": automation.Destroy,
			}[op]
			return g.reportResults(op, e.Parallel(cmd.Context(), progs, parallel, run(opts...)))
		},
	}
	f.register(cmd, op == "preview" || op == "up")
	cmd.Flags().IntVar(&parallel, "parallel", 4, "with several --env names (comma-separated): environments run at once")
	if op == "preview" || op == "refresh" {
		cmd.Flags().BoolVar(&expectNoChanges, "expect-no-changes", false, "exit 2 when there are changes (nothing is written)")
	}
	if op == "destroy" {
		cmd.Flags().BoolVar(&remove, "remove", false, "also remove the stack from the backend")
	}
	return cmd
}

// reportResults prints each environment's result and returns the combined outcome.
func (g *globals) reportResults(op string, results []automation.EnvResult) error {
	var codes []int
	var failed []string
	for _, r := range results {
		g.printResult(r.Result)
		_, code := classify(r.Err)
		codes = append(codes, code)
		g.add(item{Environment: r.Stack, Operation: op, Status: statusOf(r.Err), Result: r.Result, Error: errJSON(r.Err)})
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.Stack, r.Err))
		}
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

// progress prints one line per resource step on a terminal, nothing in CI.
func (g *globals) progress() func(events.EngineEvent) {
	if g.json || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return func(ev events.EngineEvent) {
		if ev.ResourcePreEvent != nil {
			md := ev.ResourcePreEvent.Metadata
			fmt.Fprintf(os.Stderr, "  %-8s %s\n", md.Op, md.URN)
		}
	}
}

// printResult prints a result for people (nothing with --json: the
// envelope carries it).
func (g *globals) printResult(res *automation.Result) {
	if res == nil || g.json {
		return
	}
	ops := make([]string, 0, len(res.Summary))
	for op, n := range res.Summary {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(ops)
	fmt.Printf("%s of %s: %s in %s\n", res.Operation, res.Stack, strings.Join(ops, " "), res.Duration.Round(1e6))
	for _, f := range res.Policy {
		fmt.Printf("  policy   %-9s %s: %s\n", f.Enforcement, f.Policy, firstLine(f.Message))
	}
	blocked := false
	for _, f := range res.Policy {
		blocked = blocked || f.Blocking()
	}
	if blocked && len(res.Changed()) > 0 {
		fmt.Println("  blocked by policy; nothing was applied. The plan was:")
	}
	for _, c := range res.Changed() {
		diff := ""
		if len(c.Diffs) > 0 {
			diff = " (" + strings.Join(c.Diffs, ", ") + ")"
		}
		fmt.Printf("  %-8s %s%s\n", c.Op, c.URN, diff)
	}
	keys := make([]string, 0, len(res.Outputs))
	for k := range res.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  output %s = %v\n", k, res.Outputs[k])
	}
}

// firstLine returns the last line of an engine policy message (the first is
// the policy's description).
func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

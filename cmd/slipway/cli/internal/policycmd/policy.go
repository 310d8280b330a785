package policycmd

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// newPolicyCmd is the policy verb: check and list.
func newPolicyCmd(g *app.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check environments against the policy packs in seconds (no engine, cluster or backend), list the rules"}
	cmd.AddCommand(newPolicyCheckCmd(g), newPolicyListCmd(g))
	return cmd
}

func newPolicyCheckCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Evaluate the packs on environments' programs under mocks, as a preview would; exit 3 when a mandatory policy blocks",
		Long: "Policy check runs each environment's program in-process under mocks (values a provider computes are unknown, " +
			"as in a preview) and evaluates the packs (default: every pack) with the environment kind's enforcement " +
			"(advisory in dev/qa/ephemeral, the policies' own levels in staging/prod) and --policy-level overrides. " +
			"It needs no engine, cluster, backend or toolchain. Exit 3 when a mandatory violation would block an up, else 0.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(f.Packs) == 0 {
				f.Packs = g.Config.PackNames()
			}
			f.Mock = true
			sp, err := f.Parse(g, true)
			if err != nil {
				return err
			}
			defer sp.Cleanup()
			var entries []report.Entry
			var codes []int
			var failed []string
			for i, prog := range sp.Progs {
				rep, err := checkPolicy(prog, sp.Kinds[i], sp)
				if err == nil && !rep.Passed() {
					err = blockedError(prog.Stack, rep.Blocking())
				}
				_, code := app.Classify(err)
				codes = append(codes, code)
				if err != nil {
					failed = append(failed, err.Error())
				}
				e := report.Entry{Environment: prog.Stack, Operation: report.PolicyCheck, Err: err}
				if rep != nil {
					e.Findings, e.Policies = rep.Results, rep.Policies
				}
				entries = append(entries, e)
				g.Add(app.Item{Environment: prog.Stack, Operation: "policy check", Status: app.StatusOf(err), Policy: rep, Error: app.ErrJSON(err)})
			}
			g.WriteReport(entries...)
			switch code := app.Worst(codes...); {
			case code == app.ExitOK:
				return nil
			case len(failed) == 1:
				return &app.CodedError{Code: code, Kind: app.CodeKind(code), Err: fmt.Errorf("%s", failed[0])}
			default:
				return &app.CodedError{Code: code, Kind: app.CodeKind(code), Err: fmt.Errorf("%d of %d environment(s) did not pass:\n  %s", len(failed), len(sp.Progs), strings.Join(failed, "\n  "))}
			}
		},
	}
	f.Register(g, cmd, true)
	g.AddFormat(cmd, report.Formats()...)
	return cmd
}

// blockedError is a policy check's refusal: the blocking findings.
func blockedError(stack string, blocking []policypacks.Finding) error {
	lines := make([]string, 0, len(blocking))
	for _, f := range blocking {
		lines = append(lines, fmt.Sprintf("  %s (%s): %s (%s)", f.Policy, f.Enforcement, app.FirstLine(f.Message), f.URN))
	}
	return &app.CodedError{Code: app.ExitPolicy, Kind: "policy_blocked",
		Err: fmt.Errorf("policy check of %s: %d mandatory policy violation(s) would block an up:\n%s", stack, len(blocking), strings.Join(lines, "\n"))}
}

// checkPolicy runs prog under mocks as a preview would and evaluates the
// packs on its resources, with URNs as the engine gives them.
func checkPolicy(prog automation.Program, kind stacks.Kind, sp input.Spec) (*policypacks.Report, error) {
	values := map[string]string{}
	var secret []string
	for k, v := range prog.Config {
		values[k] = v.Value
		if v.Secret {
			secret = append(secret, k)
		}
	}
	// The program runs under its own project and stack, so URNs are the
	// engine's.
	graph, err := mocktest.Run(prog.Run, &mocktest.Mocks{Project: prog.Project, Stack: prog.Stack},
		mocktest.Preview(), mocktest.Config(values, secret...))
	if err != nil {
		return nil, fmt.Errorf("policy check of %s: the program failed under mocks: %w", prog.Stack, err)
	}
	res := graph.PolicyResources()
	rep := policypacks.Evaluate(res, policypacks.Settings{Kind: string(kind), Overrides: sp.Settings}, sp.Packs...)
	return rep, nil
}

func newPolicyListCmd(g *app.Globals) *cobra.Command {
	var packs, kinds, levels []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every policy: pack, severity, enforcement per environment kind, compliance controls",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(packs) == 0 {
				packs = g.Config.PackNames()
			}
			ps, err := g.Config.PacksByName(packs...)
			if err != nil {
				return err
			}
			if len(kinds) == 0 {
				for _, k := range stacks.Kinds() {
					kinds = append(kinds, string(k))
				}
			}
			for _, k := range kinds {
				if !stacks.Kind(k).Valid() {
					return app.BadInput("--kind %q is not an environment kind; use dev, qa, staging, prod or ephemeral", k)
				}
			}
			lv, err := input.Pairs("policy-level", levels)
			if err != nil {
				return err
			}
			over := map[string]policypacks.Override{}
			for name, l := range lv {
				over[name] = policypacks.Override{Enforcement: policypacks.Enforcement(l)}
			}
			if err := (policypacks.Settings{Overrides: over}).Validate(ps...); err != nil {
				return app.BadInput("--policy-level: %v", err)
			}
			rules := rulesOf(ps, kinds, over)
			g.Add(app.Item{Operation: "policy list", Status: "succeeded", Rules: rules})
			switch g.Format {
			case report.JSON:
				return nil
			case report.Markdown:
				return writeRulesMarkdown(g, rules, kinds)
			}
			return writeRulesText(g, rules, kinds)
		},
	}
	cmd.Flags().StringSliceVar(&packs, "policy", nil, "packs to list: "+strings.Join(g.Config.PackNames(), ", ")+" (default every pack)")
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "environment kinds to show the enforcement of, comma-separated (default dev,qa,staging,prod,ephemeral)")
	cmd.Flags().StringArrayVar(&levels, "policy-level", nil, "override one policy's enforcement, POLICY=advisory|mandatory|remediate|disabled (repeatable)")
	g.AddFormat(cmd, report.Text, report.JSON, report.Markdown)
	return cmd
}

// rulesOf lists the packs' policies with their effective enforcement per kind.
func rulesOf(packs []*policypacks.Pack, kinds []string, over map[string]policypacks.Override) []app.Rule {
	var out []app.Rule
	for _, p := range packs {
		for _, pol := range p.Policies {
			r := app.Rule{Pack: p.Name, Policy: pol.Name, Description: pol.Description, Severity: pol.Severity,
				Enforcement: map[string]policypacks.Enforcement{}, Controls: slices.Clone(pol.Controls)}
			if r.Controls == nil {
				r.Controls = []policypacks.Control{}
			}
			for _, k := range kinds {
				r.Enforcement[k], _ = policypacks.Settings{Kind: k, Overrides: over}.Effective(pol)
			}
			out = append(out, r)
		}
	}
	return out
}

func controls(cs []policypacks.Control) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return strings.Join(out, "; ")
}

func writeRulesText(g *app.Globals, rules []app.Rule, kinds []string) error {
	w := tabwriter.NewWriter(g.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "PACK\tPOLICY\tSEVERITY\t%s\tCONTROLS\n", strings.ToUpper(strings.Join(kinds, "\t")))
	for _, r := range rules {
		var levels []string
		for _, k := range kinds {
			levels = append(levels, string(r.Enforcement[k]))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Pack, r.Policy, r.Severity, strings.Join(levels, "\t"), controls(r.Controls))
	}
	return w.Flush()
}

func writeRulesMarkdown(g *app.Globals, rules []app.Rule, kinds []string) error {
	var b strings.Builder
	b.WriteString("## Slipway policies\n\n| pack | policy | severity | " + strings.Join(kinds, " | ") + " | controls |\n|---|---|---|")
	b.WriteString(strings.Repeat("---|", len(kinds)+1) + "\n")
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	for _, r := range rules {
		fmt.Fprintf(&b, "| %s | `%s` | %s |", cell(r.Pack), cell(r.Policy), r.Severity)
		for _, k := range kinds {
			fmt.Fprintf(&b, " %s |", r.Enforcement[k])
		}
		fmt.Fprintf(&b, " %s |\n", cell(controls(r.Controls)))
	}
	_, err := fmt.Fprint(g.Out, b.String())
	return err
}

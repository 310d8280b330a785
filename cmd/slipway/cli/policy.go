package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check environments against the policy packs in seconds (no engine, cluster or backend), list the rules"}
	cmd.AddCommand(newPolicyCheckCmd(g), newPolicyListCmd(g))
	return cmd
}

func newPolicyCheckCmd(g *globals) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Evaluate the packs on environments' programs under mocks, as a preview would; exit 3 when a mandatory policy blocks",
		Long: "Policy check runs each environment's program in-process under mocks (values a provider computes are unknown, " +
			"as in a preview) and evaluates the packs (default: every pack) with the environment kind's enforcement " +
			"(advisory in dev/qa/ephemeral, the policies' own levels in staging/prod) and --policy-level overrides. " +
			"It needs no engine, cluster, backend or toolchain. Exit 3 when a mandatory violation would block an up, else 0.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(f.packs) == 0 {
				f.packs = g.cfg.packNames()
			}
			f.mock = true
			sp, err := f.parse(g, true)
			if err != nil {
				return err
			}
			defer sp.cleanup()
			var entries []report.Entry
			var codes []int
			var failed []string
			for i, prog := range sp.progs {
				rep, err := checkPolicy(prog, sp.kinds[i], sp)
				if err == nil && !rep.Passed() {
					err = blockedError(prog.Stack, rep.Blocking())
				}
				_, code := classify(err)
				codes = append(codes, code)
				if err != nil {
					failed = append(failed, err.Error())
				}
				e := report.Entry{Environment: prog.Stack, Operation: report.PolicyCheck, Err: err}
				if rep != nil {
					e.Findings, e.Policies = rep.Results, rep.Policies
				}
				entries = append(entries, e)
				g.add(item{Environment: prog.Stack, Operation: "policy check", Status: statusOf(err), Policy: rep, Error: errJSON(err)})
			}
			g.writeReport(entries...)
			switch code := worst(codes...); {
			case code == ExitOK:
				return nil
			case len(failed) == 1:
				return &exitError{code: code, kind: codeKind(code), err: fmt.Errorf("%s", failed[0])}
			default:
				return &exitError{code: code, kind: codeKind(code), err: fmt.Errorf("%d of %d environment(s) did not pass:\n  %s", len(failed), len(sp.progs), strings.Join(failed, "\n  "))}
			}
		},
	}
	f.register(g, cmd, true)
	g.addFormat(cmd, report.Formats()...)
	return cmd
}

// blockedError is a policy check's refusal: the blocking findings.
func blockedError(stack string, blocking []policypacks.Finding) error {
	lines := make([]string, 0, len(blocking))
	for _, f := range blocking {
		lines = append(lines, fmt.Sprintf("  %s (%s): %s (%s)", f.Policy, f.Enforcement, firstLine(f.Message), f.URN))
	}
	return &exitError{code: ExitPolicy, kind: "policy_blocked",
		err: fmt.Errorf("policy check of %s: %d mandatory policy violation(s) would block an up:\n%s", stack, len(blocking), strings.Join(lines, "\n"))}
}

// checkPolicy runs prog under mocks as a preview would and evaluates the
// packs on its resources, with URNs as the engine gives them.
func checkPolicy(prog automation.Program, kind stacks.Kind, sp spec) (*policypacks.Report, error) {
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
	rep := policypacks.Evaluate(res, policypacks.Settings{Kind: string(kind), Overrides: sp.settings}, sp.packs...)
	return rep, nil
}

// rule is one policy as policy list prints it.
type rule struct {
	Pack        string                             `json:"pack"`
	Policy      string                             `json:"policy"`
	Description string                             `json:"description"`
	Severity    policypacks.Severity               `json:"severity"`
	Enforcement map[string]policypacks.Enforcement `json:"enforcement"`
	Controls    []policypacks.Control              `json:"controls"`
}

func newPolicyListCmd(g *globals) *cobra.Command {
	var packs, kinds, levels []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every policy: pack, severity, enforcement per environment kind, compliance controls",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(packs) == 0 {
				packs = g.cfg.packNames()
			}
			ps, err := g.cfg.packsByName(packs...)
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
					return badInput("--env %q is not an environment kind; use dev, qa, staging, prod or ephemeral", k)
				}
			}
			lv, err := pairs("policy-level", levels)
			if err != nil {
				return err
			}
			over := map[string]policypacks.Override{}
			for name, l := range lv {
				over[name] = policypacks.Override{Enforcement: policypacks.Enforcement(l)}
			}
			if err := (policypacks.Settings{Overrides: over}).Validate(ps...); err != nil {
				return badInput("--policy-level: %v", err)
			}
			rules := rulesOf(ps, kinds, over)
			g.add(item{Operation: "policy list", Status: "succeeded", Rules: rules})
			switch g.format {
			case report.JSON:
				return nil
			case report.Markdown:
				return writeRulesMarkdown(g, rules, kinds)
			}
			return writeRulesText(g, rules, kinds)
		},
	}
	cmd.Flags().StringSliceVar(&packs, "policy", nil, "packs to list: "+strings.Join(g.cfg.packNames(), ", ")+" (default every pack)")
	cmd.Flags().StringSliceVar(&kinds, "env", nil, "environment kinds to show the enforcement of, comma-separated (default dev,qa,staging,prod,ephemeral)")
	cmd.Flags().StringArrayVar(&levels, "policy-level", nil, "override one policy's enforcement, POLICY=advisory|mandatory|remediate|disabled (repeatable)")
	g.addFormat(cmd, report.Text, report.JSON, report.Markdown)
	return cmd
}

// rulesOf lists the packs' policies with their effective enforcement per kind.
func rulesOf(packs []*policypacks.Pack, kinds []string, over map[string]policypacks.Override) []rule {
	var out []rule
	for _, p := range packs {
		for _, pol := range p.Policies {
			r := rule{Pack: p.Name, Policy: pol.Name, Description: pol.Description, Severity: pol.Severity,
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

func writeRulesText(g *globals, rules []rule, kinds []string) error {
	w := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
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

func writeRulesMarkdown(g *globals, rules []rule, kinds []string) error {
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
	_, err := fmt.Fprint(g.out, b.String())
	return err
}

// programInfo is one registered definition as params prints it.
type programInfo struct {
	Name        string     `json:"name"`
	Project     string     `json:"project"`
	Description string     `json:"description"`
	Flags       []flagInfo `json:"flags"`
	Paths       []string   `json:"paths"`
}

// flagInfo is one parameter shorthand of a program.
type flagInfo struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Usage string `json:"usage,omitempty"`
}

// paramsDoc is what params prints.
type paramsDoc struct {
	Programs []programInfo   `json:"programs"`
	Program  string          `json:"program"`
	Kind     stacks.Kind     `json:"kind"`
	Params   json.RawMessage `json:"params"`
}

func newParamsCmd(g *globals) *cobra.Command {
	var program, kind, name string
	cmd := &cobra.Command{
		Use:     "params",
		Aliases: []string{"programs"},
		Short:   "Print the registered programs, their parameter paths (--param) and a kind's defaulted parameters as JSON",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := g.cfg.program(program)
			if err != nil {
				return err
			}
			if kind != "" && !stacks.Kind(kind).Valid() {
				return badInput("--kind %q is not a kind; use dev, qa, staging, prod or ephemeral", kind)
			}
			if name == "" {
				name = kind
				if name == "" {
					name = string(stacks.Dev)
				}
			}
			if !envNameRE.MatchString(name) || len(name) > 40 {
				return badInput("--env %q must be a lower-case DNS label of at most 40 characters (a-z, 0-9, '-'), e.g. pr-42", name)
			}
			k := stacks.Kind(kind)
			if k == "" {
				if k, err = b.KindFor(name); err != nil {
					return badInput("--env %s: %v", name, err)
				}
			}
			params, err := b.DefaultParams(name, k)
			if err != nil {
				return badInput("%v", err)
			}
			doc := paramsDoc{Program: b.Info().Name, Kind: k, Params: params}
			for _, p := range g.cfg.programs {
				i := p.Info()
				flags := []flagInfo{}
				for _, f := range i.Flags {
					flags = append(flags, flagInfo{Name: f.Name, Path: f.Path, Usage: f.Usage})
				}
				doc.Programs = append(doc.Programs, programInfo{Name: i.Name, Project: i.Project, Description: i.Description, Flags: flags, Paths: i.Paths})
			}
			g.add(item{Environment: name, Operation: "params", Status: "succeeded", Params: &doc})
			if g.json {
				return nil
			}
			enc := json.NewEncoder(g.out)
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		},
	}
	cmd.Flags().StringVar(&program, "program", "", fmt.Sprintf("the program whose defaults to print: %s (default %s)", strings.Join(g.cfg.programNames(), ", "), g.cfg.programNames()[0]))
	cmd.Flags().StringVar(&kind, "kind", "", "environment kind: dev, qa, staging, prod, ephemeral (default: the name when it is one or the program maps it; any other name needs --kind)")
	cmd.Flags().StringVar(&name, "env", "", "environment name the defaults are computed for (default: the kind)")
	return cmd
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// envFlags are the typed parameters of an environment on the command line.
type envFlags struct {
	name, kind, kubeconfig, namespace, image string
	replicas                                 int
	settings                                 []string
	render                                   string // set by `render`: the manifest directory
}

func (f *envFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "env", "", "environment name, e.g. dev or pr-42 (required)")
	fl.StringVar(&f.kind, "kind", "", "environment kind: dev, qa, staging, prod, ephemeral (default: the name when it is one, else dev)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "target cluster kubeconfig (default: the local cluster of `slipway cluster up`)")
	fl.StringVar(&f.namespace, "namespace", "", "namespace (default slipway-<env>)")
	fl.StringVar(&f.image, "image", "", "application image with a pinned tag (default nginx:1.27)")
	fl.IntVar(&f.replicas, "replicas", 0, "application replicas (default 1, 2 in staging/prod)")
	fl.StringArrayVar(&f.settings, "set", nil, "application setting KEY=VALUE (repeatable)")
}

// environment builds and validates the environment before any engine run.
func (f *envFlags) environment(g *globals) (stacks.Environment, error) {
	if f.name == "" {
		return stacks.Environment{}, errors.New("--env is required, e.g. --env dev")
	}
	kind := stacks.Kind(f.kind)
	if kind == "" {
		kind = stacks.Dev
		if k := stacks.Kind(f.name); k.Valid() {
			kind = k
		}
	}
	kc := f.kubeconfig
	if kc == "" {
		c, err := localk8s.Load(g.clusterDir())
		if err != nil {
			return stacks.Environment{}, fmt.Errorf("no --kubeconfig given and no local cluster: %w", err)
		}
		kc = c.Kubeconfig
	}
	settings := map[string]string{}
	for _, s := range f.settings {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return stacks.Environment{}, fmt.Errorf("--set %q: use KEY=VALUE", s)
		}
		settings[k] = v
	}
	env := stacks.Environment{Name: f.name, Kind: kind, Kubeconfig: kc, Namespace: f.namespace, RenderDir: f.render,
		App: stacks.App{Image: f.image, Replicas: f.replicas, Settings: settings}}
	return env, env.Validate()
}

func (g *globals) engine(ctx context.Context) (*automation.Engine, error) {
	opts := []automation.EngineOption{automation.WithDir(g.dir), automation.WithResolver(g.resolver())}
	if g.backend != "" {
		opts = append(opts, automation.WithBackend(g.backend))
	}
	return automation.New(ctx, opts...)
}

func newOpCmd(g *globals, op string) *cobra.Command {
	var f envFlags
	var expectNoChanges, remove bool
	var packs []string
	var parallel int
	short := map[string]string{
		"preview": "Show the changes an up would make (exit 2 with --expect-no-changes and changes)",
		"up":      "Create or update the environment",
		"refresh": "Read live state into the stack (exit 2 with --expect-no-changes and drift)",
		"destroy": "Delete every resource of the environment",
	}[op]
	cmd := &cobra.Command{
		Use:   op,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.Contains(f.name, ",") {
				return g.runMany(cmd.Context(), op, f, parallel, expectNoChanges, remove)
			}
			e, st, env, err := g.openStack(cmd.Context(), &f)
			if err != nil {
				return err
			}
			opts := []automation.Option{automation.OnEvent(g.progress())}
			if len(packs) > 0 {
				ps, err := all.ByName(packs...)
				if err != nil {
					return err
				}
				dir, err := e.PolicyDir(env.Name, policypacks.Settings{Environment: string(env.WithDefaults().Kind)}, ps...)
				if err != nil {
					return err
				}
				opts = append(opts, automation.Policies(dir))
			}
			if expectNoChanges {
				opts = append(opts, automation.ExpectNoChanges())
			}
			if remove {
				opts = append(opts, automation.RemoveStack())
			}
			var res *automation.Result
			switch op {
			case "preview":
				res, err = st.Preview(cmd.Context(), opts...)
			case "up":
				res, err = st.Up(cmd.Context(), opts...)
			case "refresh":
				res, err = st.Refresh(cmd.Context(), opts...)
			case "destroy":
				res, err = st.Destroy(cmd.Context(), opts...)
			}
			g.printResult(res)
			if err != nil {
				if expectNoChanges && res != nil && res.Changes() > 0 {
					return &exitError{code: 2, err: err}
				}
				return err
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&parallel, "parallel", 4, "with several --env names (comma-separated): environments run at once")
	if op == "preview" || op == "refresh" {
		cmd.Flags().BoolVar(&expectNoChanges, "expect-no-changes", false, "exit 2 when there are changes")
	}
	if op == "preview" || op == "up" {
		cmd.Flags().StringSliceVar(&packs, "policy", nil, "policy packs to enforce in the engine: aws, kubernetes, cost (advisory in dev/qa/ephemeral)")
	}
	if op == "destroy" {
		cmd.Flags().BoolVar(&remove, "remove", false, "also remove the stack from the backend")
	}
	return cmd
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

func (g *globals) printResult(res *automation.Result) {
	if res == nil {
		return
	}
	if g.json {
		_ = g.printJSON(res)
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

// runMany runs op on several environments (--env a,b,c) in parallel, each in
// its own workspace, and prints every result.
func (g *globals) runMany(ctx context.Context, op string, f envFlags, parallel int, expectNoChanges, remove bool) error {
	var progs []automation.Program
	for _, name := range strings.Split(f.name, ",") {
		ef := f
		ef.name = strings.TrimSpace(name)
		env, err := ef.environment(g)
		if err != nil {
			return err
		}
		p, err := env.Program()
		if err != nil {
			return err
		}
		progs = append(progs, p)
	}
	e, err := g.engine(ctx)
	if err != nil {
		return err
	}
	var opts []automation.Option
	if expectNoChanges {
		opts = append(opts, automation.ExpectNoChanges())
	}
	if remove {
		opts = append(opts, automation.RemoveStack())
	}
	run := map[string]func(...automation.Option) func(context.Context, *automation.Stack) (*automation.Result, error){
		"preview": automation.Preview, "up": automation.Up, "destroy": automation.Destroy,
		"refresh": func(o ...automation.Option) func(context.Context, *automation.Stack) (*automation.Result, error) {
			return func(ctx context.Context, s *automation.Stack) (*automation.Result, error) {
				return s.Refresh(ctx, o...)
			}
		},
	}[op]
	results := e.Parallel(ctx, progs, parallel, run(opts...))
	if g.json {
		_ = g.printJSON(results)
	}
	failed, changed := 0, 0
	for _, r := range results {
		if !g.json {
			g.printResult(r.Result)
			if r.Err != nil {
				fmt.Printf("  %s failed: %v\n", r.Stack, r.Err)
			}
		}
		if r.Err != nil {
			failed++
			if r.Result != nil && r.Result.Changes() > 0 {
				changed++
			}
		}
	}
	switch {
	case expectNoChanges && failed > 0 && failed == changed:
		return &exitError{code: 2, err: fmt.Errorf("%d environment(s) have changes", changed)}
	case failed > 0:
		return fmt.Errorf("%d of %d environment(s) failed", failed, len(results))
	}
	return nil
}

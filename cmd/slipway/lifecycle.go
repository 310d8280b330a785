package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
)

// openStack validates the environment flags and opens its stack.
func (g *globals) openStack(ctx context.Context, f *envFlags) (*automation.Engine, *automation.Stack, stacks.Environment, error) {
	env, err := f.environment(g)
	if err != nil {
		return nil, nil, env, err
	}
	prog, err := env.Program()
	if err != nil {
		return nil, nil, env, err
	}
	e, err := g.engine(ctx)
	if err != nil {
		return nil, nil, env, err
	}
	st, err := e.UpsertStack(ctx, prog)
	return e, st, env, err
}

func newDriftCmd(g *globals) *cobra.Command {
	var f envFlags
	var remediate bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Compare live state with the recorded state; exit 2 when something drifted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, _, err := g.openStack(cmd.Context(), &f)
			if err != nil {
				return err
			}
			var opts []automation.DriftOption
			if remediate {
				opts = append(opts, automation.Remediate())
			}
			report := func(d *automation.Drift, err error) {
				if d != nil {
					g.printDrift(d)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "slipway: drift check:", err)
				}
			}
			if interval > 0 {
				err := st.WatchDrift(cmd.Context(), interval, report, opts...)
				if errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
			d, err := st.CheckDrift(cmd.Context(), opts...)
			report(d, nil)
			if err != nil {
				return err
			}
			if d.Found() && d.Remediated == nil {
				return &exitError{code: 2, err: fmt.Errorf("drift found in %d resource(s)", len(d.Resources))}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&remediate, "remediate", false, "re-apply the desired state when drift is found")
	cmd.Flags().DurationVar(&interval, "interval", 0, "keep checking at this interval (e.g. 5m) until interrupted")
	return cmd
}

func (g *globals) printDrift(d *automation.Drift) {
	if g.json {
		_ = g.printJSON(d)
		return
	}
	if !d.Found() {
		fmt.Printf("no drift in %s\n", d.Stack)
		return
	}
	fmt.Printf("drift in %s: %d resource(s)\n", d.Stack, len(d.Resources))
	for _, r := range d.Resources {
		fmt.Printf("  %s\n", r.URN)
		for _, p := range r.Properties {
			fmt.Printf("    %s: expected %v, live %v\n", p.Path, p.Expected, p.Actual)
		}
	}
	if d.Remediated != nil {
		fmt.Printf("remediated: %v\n", d.Remediated.Summary)
	}
}

func newEphemeralCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "ephemeral", Short: "Create or destroy per-pull-request environments with a TTL"}
	var f envFlags
	var key string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create (or update and extend) an ephemeral environment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.kind == "" {
				f.kind = string(stacks.Ephemeral)
			}
			env, err := f.environment(g)
			if err != nil {
				return err
			}
			prog, err := env.Program()
			if err != nil {
				return err
			}
			e, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
			if key == "" {
				key = env.Name
			}
			res, eph, err := e.CreateEphemeral(cmd.Context(), prog, key, ttl, automation.OnEvent(g.progress()))
			g.printResult(res)
			if eph != nil && !g.json {
				fmt.Printf("ephemeral %s (key %s) expires at %s\n", eph.Stack, eph.Key, eph.Expires.Format(time.RFC3339))
			}
			return err
		},
	}
	f.register(create)
	create.Flags().StringVar(&key, "key", "", "what the environment is for, e.g. a pull-request number (default: its name)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "time to live; `slipway gc` destroys it afterwards")
	var name string
	destroy := &cobra.Command{
		Use:   "destroy",
		Short: "Destroy an ephemeral environment and remove its stack (no-op when gone)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--env is required")
			}
			e, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
			res, err := e.DestroyEphemeral(cmd.Context(), stacks.Project, name)
			g.printResult(res)
			return err
		},
	}
	destroy.Flags().StringVar(&name, "env", "", "environment name")
	cmd.AddCommand(create, destroy)
	return cmd
}

func newGCCmd(g *globals) *cobra.Command {
	var parallel int
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Destroy every expired ephemeral environment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
			out, err := e.GC(cmd.Context(), stacks.Project, time.Now(), parallel)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(out)
			}
			failed := 0
			for _, r := range out {
				state := "destroyed"
				if r.Error != "" {
					state, failed = "failed: "+r.Error, failed+1
				}
				fmt.Printf("%s (key %s, expired %s): %s\n", r.Stack, r.Key, r.Expires.Format(time.RFC3339), state)
			}
			fmt.Printf("%d expired environment(s) collected\n", len(out)-failed)
			if failed > 0 {
				return fmt.Errorf("%d environment(s) could not be destroyed", failed)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&parallel, "parallel", 4, "environments destroyed at once")
	return cmd
}

func newRollbackCmd(g *globals) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Re-apply the environment's last-known-good release",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := f.environment(g)
			if err != nil {
				return err
			}
			e, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
			res, lkg, err := e.Rollback(cmd.Context(), stacks.Project, env.Name, stacks.ProgramFromVersion, automation.OnEvent(g.progress()))
			g.printResult(res)
			if lkg != nil && !g.json {
				fmt.Printf("restored the release recorded at %s\n", lkg.Recorded.Format(time.RFC3339))
			}
			return err
		},
	}
	f.register(cmd)
	return cmd
}

func newPromoteCmd(g *globals) *cobra.Command {
	var f envFlags
	var through []string
	var packs []string
	var approve []string
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Promote the same program through environments (default dev, staging, prod), gate by gate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
			var stages []automation.Stage
			for _, name := range through {
				sf := f
				sf.name, sf.kind = name, ""
				env, err := sf.environment(g)
				if err != nil {
					return err
				}
				rel, err := env.Release(nil)
				if err != nil {
					return err
				}
				stage := automation.Stage{Name: name, Release: rel}
				if len(packs) > 0 {
					ps, err := all.ByName(packs...)
					if err != nil {
						return err
					}
					dir, err := e.PolicyDir(name, policypacks.Settings{Environment: string(env.WithDefaults().Kind)}, ps...)
					if err != nil {
						return err
					}
					stage.Policies = []string{dir}
				}
				if slices.Contains(approve, name) {
					stage.Approve = func(context.Context, string, *automation.Result) error {
						if os.Getenv("SLIPWAY_APPROVE") != name {
							return fmt.Errorf("stage %s needs approval: set SLIPWAY_APPROVE=%s", name, name)
						}
						return nil
					}
				}
				stages = append(stages, stage)
			}
			results, err := e.Promote(cmd.Context(), stages, stacks.ProgramFromVersion, automation.OnEvent(g.progress()))
			if g.json {
				_ = g.printJSON(results)
			} else {
				for _, r := range results {
					state := "promoted"
					if r.Error != "" {
						state = "stopped: " + r.Error
					}
					fmt.Printf("%-10s %s\n", r.Stage, state)
				}
			}
			return err
		},
	}
	f.register(cmd)
	_ = cmd.Flags().MarkHidden("env")
	cmd.Flags().StringSliceVar(&through, "through", []string{"dev", "staging", "prod"}, "environments in promotion order")
	cmd.Flags().StringSliceVar(&packs, "policy", nil, "policy packs every stage must pass")
	cmd.Flags().StringSliceVar(&approve, "approve", nil, "stages that need approval (SLIPWAY_APPROVE=<stage>)")
	return cmd
}

func newRenderCmd(g *globals) *cobra.Command {
	var f envFlags
	var out string
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the environment's Kubernetes objects to YAML files (for Argo CD / Flux)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required: the directory to write manifests to")
			}
			if f.kubeconfig == "" {
				f.kubeconfig = os.DevNull // rendering needs no cluster
			}
			f.render = out
			_, st, _, err := g.openStack(cmd.Context(), &f)
			if err != nil {
				return err
			}
			res, err := st.Up(cmd.Context())
			g.printResult(res)
			if err == nil && !g.json {
				fmt.Printf("manifests written to %s\n", out)
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "directory for the YAML manifests")
	return cmd
}

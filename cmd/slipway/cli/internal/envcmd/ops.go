package envcmd

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
)

// newOpCmd is the environment verb op: preview, up, refresh or destroy.
func newOpCmd(g *app.Globals, op string) *cobra.Command {
	var f input.EnvFlags
	var expectNoChanges, remove bool
	var concurrency, parallel int
	var commit input.CommitFlags
	var confirm app.ConfirmFlags
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
				return app.BadInput("--concurrency %d must be at least 1", concurrency)
			}
			if parallel < 0 {
				return app.BadInput("--parallel %d must be at least 1 (or 0 for the engine's default)", parallel)
			}
			var upOpts []optup.Option
			if op == "up" {
				var err error
				if upOpts, err = commit.UpOptions(); err != nil {
					return err
				}
			}
			if op == "destroy" {
				if err := confirm.Early(op); err != nil {
					return err
				}
			}
			e, _, progs, err := input.Prepare(g, cmd.Context(), &f, true)
			if err != nil {
				return err
			}
			if op == "destroy" {
				var what []string
				for _, p := range progs {
					what = append(what, fmt.Sprintf("environment %s (stack %s/%s)", p.Stack, p.Project, p.Stack))
				}
				if err := confirm.Ask(cmd.Context(), g, op, what); err != nil {
					return err
				}
			}
			return g.ReportResults(op, e.Each(cmd.Context(), progs, opOf(op, g.Progress(), parallel, expectNoChanges, remove, upOpts...), concurrency))
		},
	}
	f.Register(g, cmd, op == "preview" || op == "up")
	if op == "preview" || op == "up" {
		g.AddFormat(cmd, report.Formats()...)
	}
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "with several --env names (comma-separated): environments run at once")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "resource operations the engine runs at once in each environment (0: the engine's default)")
	if op == "preview" || op == "refresh" {
		cmd.Flags().BoolVar(&expectNoChanges, "expect-no-changes", false, "exit 2 when there are changes (nothing is written)")
	}
	if op == "destroy" {
		cmd.Flags().BoolVar(&remove, "remove", false, "also remove the stack from the backend")
		confirm.Register(cmd)
	}
	if op == "up" {
		commit.Register(cmd)
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

// Package rolloutcmd is the progressive delivery verb: slipway rollout
// start, status, promote and abort (automation.Engine.Rollout and its
// siblings) over the environment definitions' canaries
// (stacks.CanaryBuilder).
package rolloutcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
	"github.com/slipwayhq/slipway/stacks"
)

// Commands are the family's verbs.
func Commands(g *app.Globals) []*cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll a release out in steps (canary weights, pauses, analyses), promote a pause, abort back to stable",
		Long: "A rollout moves an environment from its last good release to a new one in steps: each weight step updates the " +
			"environment to the canary at that share of the traffic (held to the environment's policies, as up is), each pause waits " +
			"(for a duration, or until `rollout promote`), each analysis measures (Prometheus or an HTTP check) and aborts on a failure. " +
			"After the last step the release is deployed and recorded; an abort re-applies the last good release and records the cause. " +
			"The rollout's progress is kept in the backend beside the stack: rerunning `rollout start` with the same flags resumes it.",
	}
	cmd.AddCommand(newStartCmd(g), newStatusCmd(g), newPromoteCmd(g), newAbortCmd(g))
	return []*cobra.Command{cmd}
}

// newStartCmd is rollout start.
func newStartCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	var stepFlags, analysisFlags []string
	var commit input.CommitFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start (or resume) the rollout of the release the flags describe; returns when it is promoted, paused or aborted",
		Example: "  slipway rollout start --env prod --strategy canary --image nginx:1.28 \\\n" +
			"    --analysis errors.prometheus=http://127.0.0.1:9090 \\\n" +
			"    --analysis 'errors.query=sum(rate(http_requests_total{code=~\"5..\"}[1m])) / sum(rate(http_requests_total[1m]))' \\\n" +
			"    --analysis 'errors.condition=result < 0.05' --analysis errors.count=3 --analysis errors.interval=20s \\\n" +
			"    --step weight=10 --step analysis=errors --step pause --step weight=50 --step analysis=errors --step pause=1m",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			analyses, tokens, err := parseAnalyses(analysisFlags, os.Getenv, os.ReadFile)
			if err != nil {
				return err
			}
			g.AddSecrets(tokens...)
			steps, err := parseSteps(stepFlags, analyses)
			if err != nil {
				return err
			}
			commitOpts, err := commit.UpOptions()
			if err != nil {
				return err
			}
			e, sp, progs, err := input.Prepare(g, cmd.Context(), &f, false)
			if err != nil {
				return err
			}
			c, lookup, err := canaryOf(cmd.Context(), e, sp, progs[0], steps)
			if err != nil {
				return err
			}
			show := newShower(g, progs[0].Stack)
			c.OnEvent = show.event
			st, err := e.Rollout(cmd.Context(), c, lookup, append(commitOpts, optup.OnEvent(g.Progress()))...)
			show.close()
			if errors.Is(err, rollout.ErrInProgress) {
				err = &app.CodedError{Code: app.ExitLocked, Kind: "rollout_in_progress",
					Err: fmt.Errorf("environment %s: %w (`%s rollout status --env %s` shows it)", progs[0].Stack, err, g.Config.Name, progs[0].Stack)}
			}
			if st.Name != "" && !g.JSON {
				printState(g.Out, g, st, time.Now())
			}
			if err == nil && st.Phase == rollout.Aborted {
				err = fmt.Errorf("the rollout of %s was aborted and the last good release restored: %s", progs[0].Stack, st.Cause)
			}
			return report(g, "rollout start", progs[0].Stack, st, err)
		},
	}
	f.Register(g, cmd, true)
	cmd.Flags().StringArrayVar(&stepFlags, "step", nil, "a step, in order (repeatable): weight=1..100, pause=DURATION, pause (until rollout promote), analysis=NAME[,NAME...]")
	cmd.Flags().StringArrayVar(&analysisFlags, "analysis", nil, "an analysis field NAME.FIELD=VALUE (repeatable): prometheus=URL and query=PROMQL, or http=URL and json-field=PATH; "+
		"condition='result < 0.05', count, interval, failure-limit, inconclusive-limit, error-limit, timeout; a bearer token only from bearer-token-env=VARIABLE or bearer-token-file=PATH")
	commit.Register(cmd)
	return cmd
}

// canaryOf builds the rollout of prog over the environment's last good
// release and checks every weight step's program (nothing is applied).
func canaryOf(ctx context.Context, e *automation.Engine, sp input.Spec, prog automation.Program, steps []rollout.Step) (automation.Canary, func(string) (automation.Program, error), error) {
	cb, ok := sp.Builder.(stacks.CanaryBuilder)
	if !ok {
		return automation.Canary{}, nil, app.BadInput("--definition %s cannot roll out in steps; use up", sp.Builder.Info().Name)
	}
	recs, err := e.Releases(ctx, prog.Project, prog.Stack)
	if err != nil {
		return automation.Canary{}, nil, err
	}
	lkg := releases.NewestGood(recs, len(recs), prog.Version)
	if lkg == nil {
		return automation.Canary{}, nil, app.BadInput("environment %s has no good release to roll out over; deploy the stable version first (`up` with --strategy canary)", prog.Stack)
	}
	at := func(weight int) (automation.Program, error) {
		p, err := cb.CanaryAt(prog.Version, lkg.Version, weight)
		p.Config, p.Policies = prog.Config, prog.Policies // the release's secrets and policies
		return p, err
	}
	for _, s := range steps {
		if s.Weight == 0 {
			continue
		}
		if _, err := at(s.Weight); err != nil {
			return automation.Canary{}, nil, app.BadInput("--step weight=%d: %v", s.Weight, err)
		}
	}
	c := automation.Canary{Release: automation.Release{Version: prog.Version, Program: prog}, At: at, Steps: steps}
	return c, sp.Lookup(prog.Policies), nil
}

// newStatusCmd is rollout status.
func newStatusCmd(g *app.Globals) *cobra.Command {
	var env, definition string
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print an environment's rollout: phase, steps, every analysis measurement; --watch follows it until it is promoted or aborted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := oneEnv(env)
			if err != nil {
				return err
			}
			if interval < 100*time.Millisecond {
				return app.BadInput("--interval %s is too short; use at least 100ms, e.g. 1s", interval)
			}
			t, err := g.Open(cmd.Context(), definition)
			if err != nil {
				return err
			}
			get := func() (rollout.State, error) { return stateOf(cmd.Context(), g, t.Engine, t.Project, name) }
			st, err := get()
			if err != nil || !watch {
				if err == nil && !g.JSON {
					printState(g.Out, g, st, time.Now())
				}
				return report(g, "rollout status", name, st, err)
			}
			st, err = follow(cmd.Context(), g, st, get, interval)
			return report(g, "rollout status", name, st, err)
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "environment name (required)")
	g.AddDefinition(cmd, &definition)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout until it is promoted or aborted (live on a terminal, a line per change otherwise)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with --watch: how often the record is read")
	return cmd
}

// newPromoteCmd is rollout promote.
func newPromoteCmd(g *app.Globals) *cobra.Command {
	var env, definition string
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Pass the pause (or inconclusive analysis) an environment's rollout waits at; rerun `rollout start` to go on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := oneEnv(env)
			if err != nil {
				return err
			}
			t, err := g.Open(cmd.Context(), definition)
			if err != nil {
				return err
			}
			st, err := t.Engine.PromoteRollout(cmd.Context(), t.Project, name)
			if err == nil && !g.JSON {
				fmt.Fprintf(g.Out, "%s: the pause at step %d (%s) is passed; rerun `%s rollout start` with the same flags to go on\n", name, st.Step, stepName(st, st.Step), g.Config.Name)
			}
			return report(g, "rollout promote", name, st, err)
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "environment name (required)")
	g.AddDefinition(cmd, &definition)
	return cmd
}

// newAbortCmd is rollout abort.
func newAbortCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	var cause string
	cmd := &cobra.Command{
		Use:   "abort",
		Short: "Abort an environment's rollout: re-apply its last good release (policies apply) and record the release as failed with the cause",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cause == "" {
				cause = "aborted with `rollout abort`"
				if u, err := user.Current(); err == nil && u.Username != "" {
					cause += " by " + u.Username
				}
			}
			e, sp, progs, err := input.Prepare(g, cmd.Context(), &f, false)
			if err != nil {
				return err
			}
			p := progs[0]
			cur, ok, err := e.RolloutOf(cmd.Context(), p.Project, p.Stack)
			switch {
			case err != nil:
				return report(g, "rollout abort", p.Stack, cur, err)
			case !ok:
				return report(g, "rollout abort", p.Stack, cur, fmt.Errorf("environment %s has no rollout to abort", p.Stack))
			}
			// The release is the one rolled out, as its record names it.
			rel, err := sp.Lookup(p.Policies)(cur.Version)
			if err != nil {
				return report(g, "rollout abort", p.Stack, cur, fmt.Errorf("the rollout's release: %w", err))
			}
			rel.Config = p.Config
			c := automation.Canary{Release: automation.Release{Version: cur.Version, Program: rel}}
			st, err := e.AbortRollout(cmd.Context(), c, sp.Lookup(p.Policies), cause, optup.OnEvent(g.Progress()))
			if err == nil && !g.JSON {
				printState(g.Out, g, st, time.Now())
			}
			return report(g, "rollout abort", p.Stack, st, err)
		},
	}
	f.Register(g, cmd, true)
	cmd.Flags().StringVar(&cause, "cause", "", "why, recorded in the release history (default: aborted with rollout abort, by the OS user)")
	return cmd
}

// oneEnv checks --env of the verbs that name an environment only.
func oneEnv(env string) (string, error) {
	f := input.EnvFlags{Names: env}
	names, err := f.EnvNames(false)
	if err != nil {
		return "", err
	}
	return names[0], nil
}

// stateOf reads an environment's rollout record; none is an error.
func stateOf(ctx context.Context, g *app.Globals, e *automation.Engine, project, env string) (rollout.State, error) {
	st, ok, err := e.RolloutOf(ctx, project, env)
	if err == nil && !ok {
		err = fmt.Errorf("environment %s has no rollout; start one with `%s rollout start --env %s --step ...`", env, g.Config.Name, env)
	}
	return st, err
}

// report records the verb's item for --json and returns err.
func report(g *app.Globals, op, env string, st rollout.State, err error) error {
	it := app.Item{Environment: env, Operation: op, Status: app.StatusOf(err), Error: app.ErrJSON(err)}
	if st.Name != "" {
		it.Rollout = &st
	}
	g.Add(it)
	return err
}

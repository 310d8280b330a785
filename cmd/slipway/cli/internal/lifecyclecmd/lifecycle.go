package lifecyclecmd

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
	"github.com/slipwayhq/slipway/stacks"
)

// newDriftCmd is the drift verb.
func newDriftCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	var remediate bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Compare live state with the recorded state of an existing environment; exit 2 when something drifted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 0 {
				return app.BadInput("--interval %s is negative; use e.g. 5m, or leave it out for one check", interval)
			}
			if interval > 0 && interval < 10*time.Second {
				return app.BadInput("--interval %s is too short; use at least 10s", interval)
			}
			e, _, progs, err := input.Prepare(g, cmd.Context(), &f, false)
			if err != nil {
				return err
			}
			st, err := e.SelectStack(cmd.Context(), progs[0])
			if err != nil {
				return err
			}
			opts := []optdrift.Option{optdrift.OnEvent(g.Progress())}
			if remediate {
				opts = append(opts, optdrift.Remediate())
			}
			// check records one drift check and returns its outcome as an
			// error: nil when clean (or remediated), exit 2 when drift is found.
			check := func(d *outcome.Drift, err error) error {
				if err == nil && d.Found() && d.Remediated == nil {
					err = &app.CodedError{Code: app.ExitChanges, Kind: "drift_found", Err: fmt.Errorf("drift found in %d resource(s) of %s", len(d.Resources), d.Stack)}
				}
				g.Add(app.Item{Environment: progs[0].Stack, Operation: "drift", Status: app.StatusOf(err), Drift: d, Error: app.ErrJSON(err)})
				g.WriteReport(report.Entry{Environment: progs[0].Stack, Operation: report.DriftCheck, Drift: d, Err: err})
				return err
			}
			if interval == 0 {
				return check(st.CheckDrift(cmd.Context(), opts...))
			}
			// Keep checking until interrupted; the exit code is the worst
			// outcome seen, so a failed check is never reported as 0.
			var codes []int
			err = st.WatchDrift(cmd.Context(), interval, func(d *outcome.Drift, err error) {
				if cmd.Context().Err() != nil {
					return // interrupted mid-check: not an outcome
				}
				err = check(d, err)
				_, code := app.Classify(err)
				codes = append(codes, code)
				if err != nil {
					fmt.Fprintf(g.Errw, "%s: drift check: %v\n", g.Config.Name, g.Mask(err.Error()))
				}
			}, opts...)
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			if code := app.Worst(codes...); code != app.ExitOK {
				return &app.CodedError{Code: code, Kind: app.CodeKind(code), Err: fmt.Errorf("%d of %d drift check(s) did not come back clean", countNot(codes, app.ExitOK), len(codes))}
			}
			return nil
		},
	}
	f.Register(g, cmd, true)
	g.AddFormat(cmd, report.Formats()...)
	cmd.Flags().BoolVar(&remediate, "remediate", false, "re-apply the desired state when drift is found (policies apply)")
	cmd.Flags().DurationVar(&interval, "interval", 0, "keep checking at this interval (e.g. 5m) until interrupted; exits non-zero if any check failed or found drift")
	return cmd
}

func countNot(codes []int, c int) int {
	n := 0
	for _, x := range codes {
		if x != c {
			n++
		}
	}
	return n
}

var keyFlagRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// newEphemeralCmd is the ephemeral verb: environments with a time to live.
func newEphemeralCmd(g *app.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "ephemeral", Short: "Create or destroy per-pull-request environments with a TTL"}
	var f input.EnvFlags
	var key string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create (or update and extend) an ephemeral environment; an existing non-ephemeral one is refused",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Kind == "" {
				f.Kind = string(stacks.Ephemeral)
			}
			if ttl <= 0 {
				return app.BadInput("--ttl %s must be positive, e.g. 24h", ttl)
			}
			if ttl > 90*24*time.Hour {
				return app.BadInput("--ttl %s is longer than 90 days; an ephemeral environment that lives that long is not ephemeral", ttl)
			}
			if key != "" && !keyFlagRE.MatchString(key) {
				return app.BadInput("--key %q: use letters, digits, '-', '_' or '.' (at most 63), e.g. a pull-request number", key)
			}
			e, _, progs, err := input.Prepare(g, cmd.Context(), &f, false)
			if err != nil {
				return err
			}
			if key == "" {
				key = progs[0].Stack
			}
			res, eph, err := e.CreateEphemeral(cmd.Context(), progs[0], key, ttl, optup.OnEvent(g.Progress()))
			g.PrintResult(res)
			g.Add(app.Item{Environment: progs[0].Stack, Operation: "ephemeral create", Status: app.StatusOf(err), Result: res, Ephemeral: eph, Error: app.ErrJSON(err)})
			if eph != nil && !g.JSON && err == nil {
				fmt.Fprintf(g.Out, "ephemeral %s (key %s) expires at %s\n", eph.Stack, eph.Key, eph.Expires.Format(time.RFC3339))
			}
			return err
		},
	}
	f.Register(g, create, true)
	create.Flags().StringVar(&key, "key", "", "what the environment is for, e.g. a pull-request number (default: its name)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "time to live; `slipway gc` destroys it afterwards")
	var name, definition string
	var missingOK bool
	var confirm app.ConfirmFlags
	destroy := &cobra.Command{
		Use:   "destroy",
		Short: "Destroy an ephemeral environment and remove its stack; any other environment is refused",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			df := input.EnvFlags{Names: name}
			names, err := df.EnvNames(false)
			if err != nil {
				return err
			}
			if err := confirm.Early("ephemeral destroy"); err != nil {
				return err
			}
			t, err := g.Open(cmd.Context(), definition)
			if err != nil {
				return err
			}
			project, e := t.Project, t.Engine
			if err := confirm.Ask(cmd.Context(), g, "ephemeral destroy", []string{fmt.Sprintf("ephemeral environment %s (stack %s/%s)", names[0], project, names[0])}); err != nil {
				return err
			}
			res, err := e.DestroyEphemeral(cmd.Context(), project, names[0])
			if missingOK && automation.IsUnknownStack(err) {
				res, err = &outcome.Result{Operation: "destroy", Project: project, Stack: names[0], Summary: map[string]int{}}, nil
			}
			g.PrintResult(res)
			g.Add(app.Item{Environment: names[0], Operation: "ephemeral destroy", Status: app.StatusOf(err), Result: res, Error: app.ErrJSON(err)})
			return err
		},
	}
	destroy.Flags().StringVar(&name, "env", "", "ephemeral environment name (required)")
	g.AddDefinition(destroy, &definition)
	destroy.Flags().BoolVar(&missingOK, "missing-ok", false, "succeed when the environment does not exist (already collected)")
	confirm.Register(destroy)
	cmd.AddCommand(create, destroy)
	return cmd
}

// newGCCmd is the gc verb: destroys expired ephemeral environments.
func newGCCmd(g *app.Globals) *cobra.Command {
	var concurrency int
	var definition string
	var confirm app.ConfirmFlags
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Destroy every expired ephemeral environment (only stacks tagged ephemeral)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if concurrency < 1 {
				return app.BadInput("--concurrency %d must be at least 1", concurrency)
			}
			t, err := g.Resolve(definition)
			if err != nil {
				return err
			}
			if !dryRun {
				if err := confirm.Early("gc"); err != nil {
					return err
				}
			}
			if t.Engine, err = g.Engine(cmd.Context()); err != nil {
				return err
			}
			e, project, now := t.Engine, t.Project, time.Now()
			if dryRun || !confirm.Yes {
				expired, err := app.ExpiredEphemerals(cmd.Context(), e, project, now)
				if err != nil {
					return err
				}
				if dryRun {
					return g.ReportExpired(expired)
				}
				var what []string
				for _, eph := range expired {
					what = append(what, fmt.Sprintf("ephemeral environment %s (key %s, expired %s)", eph.Stack, eph.Key, eph.Expires.Format(time.RFC3339)))
				}
				if len(what) == 0 {
					if !g.JSON {
						fmt.Fprintln(g.Out, "0 expired environment(s) collected")
					}
					return nil
				}
				if err := confirm.Ask(cmd.Context(), g, "gc", what); err != nil {
					return err
				}
			}
			out, err := e.GC(cmd.Context(), project, now, concurrency)
			if err != nil {
				return err
			}
			failed := 0
			var codes []int
			for _, r := range out {
				rerr := r.Err
				if rerr != nil {
					failed++
				}
				_, code := app.Classify(rerr)
				codes = append(codes, code)
				eph := r.Ephemeral
				g.Add(app.Item{Environment: r.Stack, Operation: "gc", Status: app.StatusOf(rerr), Result: r.Result, Ephemeral: &eph, Error: app.ErrJSON(rerr)})
				if !g.JSON {
					state := "destroyed"
					if rerr != nil {
						state = "failed: " + r.Error
					}
					fmt.Fprintf(g.Out, "%s (key %s, expired %s): %s\n", r.Stack, r.Key, r.Expires.Format(time.RFC3339), state)
				}
			}
			if !g.JSON {
				fmt.Fprintf(g.Out, "%d expired environment(s) collected\n", len(out)-failed)
			}
			if failed > 0 {
				code := app.Worst(codes...)
				return &app.CodedError{Code: code, Kind: app.CodeKind(code), Err: fmt.Errorf("%d expired environment(s) could not be destroyed", failed)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "environments destroyed at once")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the expired environments gc would destroy; destroy nothing")
	confirm.Register(cmd)
	g.AddDefinition(cmd, &definition)
	return cmd
}

// newRollbackCmd is the rollback verb.
func newRollbackCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Re-apply an existing environment's last-known-good release (policies apply)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, sp, progs, err := input.Prepare(g, cmd.Context(), &f, false)
			if err != nil {
				return err
			}
			lookup := sp.Lookup(progs[0].Policies)
			res, lkg, err := e.Rollback(cmd.Context(), progs[0].Project, progs[0].Stack, lookup, optup.OnEvent(g.Progress()))
			g.PrintResult(res)
			g.Add(app.Item{Environment: progs[0].Stack, Operation: "rollback", Status: app.StatusOf(err), Result: res, Release: lkg, Error: app.ErrJSON(err)})
			if lkg != nil && !g.JSON && err == nil {
				fmt.Fprintf(g.Out, "restored the release recorded at %s\n", lkg.Recorded.Format(time.RFC3339))
			}
			return err
		},
	}
	f.Register(g, cmd, true)
	return cmd
}

// newPromoteCmd is the promote verb.
func newPromoteCmd(g *app.Globals) *cobra.Command {
	var f input.EnvFlags
	var through, approve []string
	var approvalWait time.Duration
	var approvalKeyFile string
	var requestedBy []string
	var commit input.CommitFlags
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Promote the same program through environments (default dev, staging, prod), gate by gate",
		Long: "Promote previews each stage with its policies, asks for approval where configured " +
			"(SLIPWAY_APPROVE names the approved stages, comma-separated), and applies exactly the approved plan. " +
			"With --approval-wait, a stage of --approve that SLIPWAY_APPROVE does not approve asks for approval in the chat " +
			"(SLIPWAY_SLACK_WEBHOOK_URL, ...) and waits that long for a decision recorded by `slipway serve` (Slack button or its approvals API).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if s := f.Shorthands["namespace"]; s != nil && len(s.Values) > 0 {
				return app.BadInput("--namespace would put every stage into one namespace; each stage gets its own, so leave it out")
			}
			if f.Names != "" {
				return app.BadInput("--env is not used by promote; name the stages with --through")
			}
			if len(through) == 0 {
				return app.BadInput("--through names no stage; use e.g. --through dev,staging,prod")
			}
			f.Names = strings.Join(through, ",")
			for _, a := range approve {
				if !slices.Contains(through, a) {
					return app.BadInput("--approve %s is not a stage of --through %s", a, strings.Join(through, ","))
				}
			}
			if approvalWait < 0 || (approvalWait > 0 && len(approve) == 0) {
				return app.BadInput("--approval-wait %s: give a positive duration, with --approve naming the stages that wait for approval", approvalWait)
			}
			var approvalKey ed25519.PublicKey
			if approvalWait > 0 {
				k, err := input.ApprovalPublicKey(approvalKeyFile)
				if err != nil {
					return err
				}
				approvalKey = k
			}
			commitOpts, err := commit.UpOptions()
			if err != nil {
				return err
			}
			e, sp, progs, err := input.Prepare(g, cmd.Context(), &f, true)
			if err != nil {
				return err
			}
			approved := strings.Split(os.Getenv("SLIPWAY_APPROVE"), ",")
			gate, closeGate, err := g.ApprovalGate(cmd.Context(), e, approvalWait, approvalKey, input.Requesters(requestedBy, os.Getenv))
			if err != nil {
				return err
			}
			defer closeGate()
			var stages []automation.Stage
			for i, name := range sp.Names {
				rel := automation.Release{Version: progs[i].Version, Program: progs[i]}
				stage := automation.Stage{Name: name, Release: rel}
				if slices.Contains(approve, name) {
					stage.Approve = func(ctx context.Context, stageName string, preview *outcome.Result) error {
						if slices.Contains(approved, name) {
							return nil
						}
						if gate == nil {
							return fmt.Errorf("stage %s needs approval: set SLIPWAY_APPROVE=%s (comma-separate several stages), or wait for an approval from the chat with --approval-wait", name, name)
						}
						return gate(ctx, stageName, preview)
					}
				}
				stages = append(stages, stage)
			}
			lookup := sp.Builder.FromVersion
			results, err := e.Promote(cmd.Context(), stages, lookup, append(commitOpts, optup.OnEvent(g.Progress()))...)
			for _, r := range results {
				serr := r.Err
				it := app.Item{Environment: r.Stage, Operation: "promote", Status: app.StatusOf(serr), Preview: r.Preview, Error: app.ErrJSON(serr)}
				if r.Deployment != nil {
					it.Result, it.RolledBack, it.Rollback, it.Release = r.Deployment.Result, r.Deployment.RolledBack, r.Deployment.Rollback, r.Deployment.Restored
				}
				g.Add(it)
				if !g.JSON {
					state := "promoted"
					if r.Error != "" {
						state = "stopped: " + r.Error
					}
					fmt.Fprintf(g.Out, "%-10s %s\n", r.Stage, state)
				}
			}
			return err
		},
	}
	f.Register(g, cmd, true)
	_ = cmd.Flags().MarkHidden("env")
	cmd.Flags().StringSliceVar(&through, "through", []string{"dev", "staging", "prod"}, "environments in promotion order")
	cmd.Flags().StringSliceVar(&approve, "approve", nil, "stages that need approval (SLIPWAY_APPROVE=<stage>[,<stage>...])")
	commit.Register(cmd)
	cmd.Flags().DurationVar(&approvalWait, "approval-wait", 0, "how long a stage of --approve that SLIPWAY_APPROVE does not approve waits for an approval "+
		"from the chat or the approvals API of slipway serve (0: refuse at once)")
	cmd.Flags().StringVar(&approvalKeyFile, "approval-public-key-file", "", "PEM public key of slipway serve's --approval-key-file; with --approval-wait only decisions signed with it count (default $"+input.EnvApprovalPublicKeyFile+")")
	cmd.Flags().StringSliceVar(&requestedBy, "requested-by", nil, "who requests this promotion (e.g. your Slack user ID, U…), besides $"+input.EnvRequestedBy+", the CI actor and the OS user: none of them may approve it")
	return cmd
}

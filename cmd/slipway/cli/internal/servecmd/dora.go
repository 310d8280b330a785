package servecmd

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/report"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
)

// newDoraCmd is the dora verb: DORA metrics from the release history.
func newDoraCmd(g *app.Globals) *cobra.Command {
	var envs []string
	var definition, since string
	cmd := &cobra.Command{
		Use:   "dora",
		Short: "DORA metrics of environments from their release history: deployment frequency, lead time, change failure rate, time to restore",
		Long: "dora reads the release history that up, promote and rollback record in the backend and computes, over the window " +
			"--since ending now: deployments (releases applied, verified, failed or later rolled back) per day; lead time for changes " +
			"(commit time to successful deployment, for releases recorded with --commit-time, a CI variable or git); change failure rate " +
			"(failed and rolled-back deployments over deployments); time to restore (a failure to the next good release).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := parseWindow(since)
			if err != nil {
				return err
			}
			ef := input.EnvFlags{Names: strings.Join(envs, ",")}
			names, err := ef.EnvNames(true)
			if err != nil {
				return err
			}
			t, err := g.Open(cmd.Context(), definition)
			if err != nil {
				return err
			}
			project, e := t.Project, t.Engine
			known, err := e.Stacks(cmd.Context(), project)
			if err != nil {
				return err
			}
			until := time.Now().UTC()
			var reps []dora.Report
			for _, n := range names {
				recs, err := e.Releases(cmd.Context(), project, n)
				if err != nil {
					return err
				}
				// Only a named environment that exists (or existed: its
				// history is kept) is read.
				if !slices.Contains(known, n) && len(recs) == 0 {
					return &automation.UnknownStackError{Project: project, Stack: n, Known: known}
				}
				r := dora.Compute(recs, until.Add(-window), until)
				r.Project, r.Environment = project, n
				reps = append(reps, r)
			}
			for i, r := range reps {
				g.Add(app.Item{Environment: r.Environment, Operation: "dora", Status: app.StatusOf(nil), Dora: &r})
				if i > 0 && !g.JSON {
					fmt.Fprintln(g.Out)
				}
				switch g.Format {
				case report.Markdown:
					err = r.WriteMarkdown(g.Out)
				case report.JSON:
				default:
					err = r.WriteText(g.Out)
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&envs, "env", nil, "environment to report on, e.g. prod (repeatable, or comma-separated)")
	g.AddDefinition(cmd, &definition)
	cmd.Flags().StringVar(&since, "since", "30d", "the window, ending now: Nd (days), Nw (weeks) or a duration such as 72h")
	g.AddFormat(cmd, report.Text, report.Markdown, report.JSON)
	return cmd
}

var windowRE = regexp.MustCompile(`^(\d+)([dw])$`)

// parseWindow reads --since: Nd, Nw or a Go duration, positive.
func parseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if m := windowRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100*365 {
			return 0, app.BadInput("--since %q is too long; use at most 36500d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if m[2] == "w" {
			d *= 7
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, app.BadInput("--since %q is not a window; use e.g. --since 30d, 2w or 72h", s)
		}
	}
	if d <= 0 {
		return 0, app.BadInput("--since %q must be longer than zero; use e.g. --since 30d", s)
	}
	return d, nil
}

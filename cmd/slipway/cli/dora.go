package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/report"
)

func newDoraCmd(g *globals) *cobra.Command {
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
			ef := envFlags{names: strings.Join(envs, ",")}
			names, err := ef.envNames(true)
			if err != nil {
				return err
			}
			if err := g.validateGlobals(); err != nil {
				return err
			}
			b, err := g.cfg.definition(definition)
			if err != nil {
				return err
			}
			project := b.Info().Project
			e, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
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
				g.add(item{Environment: r.Environment, Operation: "dora", Status: statusOf(nil), Dora: &r})
				if i > 0 && !g.json {
					fmt.Fprintln(g.out)
				}
				switch g.format {
				case report.Markdown:
					err = r.WriteMarkdown(g.out)
				case report.JSON:
				default:
					err = r.WriteText(g.out)
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&envs, "env", nil, "environment to report on, e.g. prod (repeatable, or comma-separated)")
	g.addDefinition(cmd, &definition)
	cmd.Flags().StringVar(&since, "since", "30d", "the window, ending now: Nd (days), Nw (weeks) or a duration such as 72h")
	g.addFormat(cmd, report.Text, report.Markdown, report.JSON)
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
			return 0, badInput("--since %q is too long; use at most 36500d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if m[2] == "w" {
			d *= 7
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, badInput("--since %q is not a window; use e.g. --since 30d, 2w or 72h", s)
		}
	}
	if d <= 0 {
		return 0, badInput("--since %q must be longer than zero; use e.g. --since 30d", s)
	}
	return d, nil
}

// commitFlags are --commit and --commit-time of the verbs that record
// releases (up, promote): the commit a release applies, for the lead time
// of changes (see `dora`).
type commitFlags struct {
	sha, when string
}

// register adds the flags to cmd.
func (c *commitFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.sha, "commit", "", "the commit the release applies, recorded with it "+
		"(default: $GITHUB_SHA, $CI_COMMIT_SHA, $BUILD_SOURCEVERSION, $CIRCLE_SHA1, $BITBUCKET_COMMIT, $BUILDKITE_COMMIT, $GIT_COMMIT, else git's HEAD)")
	cmd.Flags().StringVar(&c.when, "commit-time", "", "the commit's time, RFC 3339 (default: $CI_COMMIT_TIMESTAMP for GitLab's commit, else read from the git repository of the working directory)")
}

// shaRE accepts a full or abbreviated Git object name.
var shaRE = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// ciCommitVars are the CI systems' variables naming the commit a job
// builds, in the order they are read.
var ciCommitVars = []string{"GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION", "CIRCLE_SHA1", "BITBUCKET_COMMIT", "BUILDKITE_COMMIT", "GIT_COMMIT"}

// commit is a release's source: the revision and its commit time (zero
// when unknown).
type commit struct {
	sha  string
	when time.Time
}

// resolve finds the commit: the flags, else the CI variables (getenv),
// else the git repository at dir (HEAD when no commit is named). A commit
// time that cannot be found is left out (the lead time is then not
// counted); only a malformed flag is an error.
func (c *commitFlags) resolve(getenv func(string) string, dir string) (commit, error) {
	var out commit
	if c.sha != "" && !shaRE.MatchString(c.sha) {
		return out, badInput("--commit %q is not a commit SHA; give the hexadecimal commit id, e.g. --commit 3f2a9c1", c.sha)
	}
	if c.when != "" {
		t, err := time.Parse(time.RFC3339, c.when)
		if err != nil {
			return out, badInput("--commit-time %q is not an RFC 3339 time; use e.g. --commit-time 2026-03-01T09:30:00Z", c.when)
		}
		out.when = t
	}
	out.sha = c.sha
	from := "--commit"
	for _, v := range ciCommitVars {
		if out.sha != "" {
			break
		}
		out.sha, from = strings.TrimSpace(getenv(v)), "$"+v
	}
	if out.sha == "" {
		from = ""
	}
	if out.when.IsZero() && out.sha != "" && out.sha == strings.TrimSpace(getenv("CI_COMMIT_SHA")) {
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(getenv("CI_COMMIT_TIMESTAMP"))); err == nil {
			out.when = t
		}
	}
	if out.when.IsZero() {
		sha, when, err := gitCommit(dir, out.sha)
		if err != nil {
			slog.Debug("no commit time: the lead time of this release is not counted", "commit", out.sha, "from", from, "reason", err)
		} else {
			out.when = when
			if out.sha == "" {
				out.sha = sha
			}
		}
	}
	return out, nil
}

// options returns the up options that record the commit.
func (c commit) options() []optup.Option {
	var o []optup.Option
	if c.sha != "" {
		o = append(o, optup.Revision(c.sha))
	}
	if !c.when.IsZero() {
		o = append(o, optup.CommitTime(c.when))
	}
	return o
}

// upOptions resolves the flags against the process's environment and
// working directory.
func (c *commitFlags) upOptions() ([]optup.Option, error) {
	dir, err := os.Getwd()
	if err != nil {
		dir = "."
	}
	cm, err := c.resolve(os.Getenv, dir)
	if err != nil {
		return nil, err
	}
	return cm.options(), nil
}

// gitCommit reads the commit named sha (HEAD when empty) from the git
// repository containing dir and returns its full id and committer time.
func gitCommit(dir, sha string) (string, time.Time, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("no git repository at %s: %w", dir, err)
	}
	rev := plumbing.Revision(sha)
	if sha == "" {
		rev = plumbing.Revision(plumbing.HEAD)
	}
	h, err := repo.ResolveRevision(rev)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("commit %s is not in the repository: %w", rev, err)
	}
	c, err := repo.CommitObject(*h)
	if err != nil {
		return "", time.Time{}, errors.Join(fmt.Errorf("reading commit %s", h), err)
	}
	return h.String(), c.Committer.When, nil
}

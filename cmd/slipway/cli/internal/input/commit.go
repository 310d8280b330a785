package input

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// CommitFlags are --commit and --commit-time of the verbs that record
// releases (up, promote): the commit a release applies, for the lead time
// of changes (see `dora`).
type CommitFlags struct {
	sha, when string
}

// Register adds the flags to cmd.
func (c *CommitFlags) Register(cmd *cobra.Command) {
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
func (c *CommitFlags) resolve(getenv func(string) string, dir string) (commit, error) {
	var out commit
	if c.sha != "" && !shaRE.MatchString(c.sha) {
		return out, app.BadInput("--commit %q is not a commit SHA; give the hexadecimal commit id, e.g. --commit 3f2a9c1", c.sha)
	}
	if c.when != "" {
		t, err := time.Parse(time.RFC3339, c.when)
		if err != nil {
			return out, app.BadInput("--commit-time %q is not an RFC 3339 time; use e.g. --commit-time 2026-03-01T09:30:00Z", c.when)
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

// UpOptions resolves the flags against the process's environment and
// working directory.
func (c *CommitFlags) UpOptions() ([]optup.Option, error) {
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

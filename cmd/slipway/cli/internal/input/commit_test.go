package input

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCommit_FlagsThenCIVariablesInOrder(t *testing.T) {
	noRepo := t.TempDir()
	vars := map[string]string{}
	for i, v := range ciCommitVars {
		vars[v] = string(rune('a'+i)) + "000000"
	}
	// Each variable wins over those after it.
	for _, v := range ciCommitVars {
		c, err := (&CommitFlags{}).resolve(env(vars), noRepo)
		require.NoError(t, err)
		assert.Equal(t, vars[v], c.sha, "%s comes first", v)
		assert.True(t, c.when.IsZero(), "no repository: no commit time")
		delete(vars, v)
	}
	c, err := (&CommitFlags{}).resolve(env(vars), noRepo)
	require.NoError(t, err)
	assert.Equal(t, commit{}, c, "nothing known")
	assert.Empty(t, c.options())

	// The flags win over every variable.
	c, err = (&CommitFlags{sha: "abcdef0", when: "2026-03-01T09:30:00+01:00"}).resolve(env(map[string]string{"GITHUB_SHA": "1234567"}), noRepo)
	require.NoError(t, err)
	assert.Equal(t, "abcdef0", c.sha)
	assert.True(t, c.when.Equal(time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)), c.when)
	assert.Len(t, c.options(), 2)
}

func TestCommit_GitLabTimestamp(t *testing.T) {
	gl := map[string]string{"CI_COMMIT_SHA": "feedbee1", "CI_COMMIT_TIMESTAMP": "2026-03-02T10:00:00+00:00"}
	c, err := (&CommitFlags{}).resolve(env(gl), t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, "feedbee1", c.sha)
	assert.True(t, c.when.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), c.when)
	// The timestamp is GitLab's commit's: not for another one named by --commit.
	c, err = (&CommitFlags{sha: "abcdef0"}).resolve(env(gl), t.TempDir())
	require.NoError(t, err)
	assert.True(t, c.when.IsZero())
}

func TestCommit_BadFlagsAreBadInput(t *testing.T) {
	for _, c := range []struct {
		f    CommitFlags
		want string
	}{
		{CommitFlags{when: "yesterday"}, `--commit-time "yesterday" is not an RFC 3339 time; use e.g. --commit-time 2026-03-01T09:30:00Z`},
		{CommitFlags{sha: "main"}, `--commit "main" is not a commit SHA`},
	} {
		_, err := c.f.resolve(env(nil), t.TempDir())
		var ie *app.InputError
		require.True(t, errors.As(err, &ie), "%v", err)
		assert.Contains(t, err.Error(), c.want)
	}
}

// TestCommit_TimeFromGit makes a repository with a commit of fixed author
// and committer times and reads the committer time back: for HEAD, for a
// named (abbreviated) commit, and from a subdirectory.
func TestCommit_TimeFromGit(t *testing.T) {
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "deploy", "prod"), 0o755))
	wt, err := repo.Worktree()
	require.NoError(t, err)
	_, err = wt.Add("main.go")
	require.NoError(t, err)
	authored := time.Date(2026, 2, 27, 16, 0, 0, 0, time.FixedZone("PST", -8*3600))
	committed := time.Date(2026, 3, 1, 9, 15, 42, 0, time.FixedZone("CET", 3600))
	h, err := wt.Commit("first", &git.CommitOptions{
		Author:    &object.Signature{Name: "a", Email: "a@example.com", When: authored},
		Committer: &object.Signature{Name: "c", Email: "c@example.com", When: committed},
	})
	require.NoError(t, err)

	c, err := (&CommitFlags{}).resolve(env(nil), filepath.Join(dir, "deploy", "prod"))
	require.NoError(t, err)
	assert.Equal(t, h.String(), c.sha, "HEAD's id when no commit is named")
	assert.True(t, c.when.Equal(committed), "%s", c.when)

	short := h.String()[:8]
	c, err = (&CommitFlags{}).resolve(env(map[string]string{"GITHUB_SHA": short}), dir)
	require.NoError(t, err)
	assert.Equal(t, short, c.sha, "the commit as named")
	assert.True(t, c.when.Equal(committed), "%s", c.when)

	// A commit the repository does not have: no time, no error.
	c, err = (&CommitFlags{sha: "0123456789abcdef"}).resolve(env(nil), dir)
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef", c.sha)
	assert.True(t, c.when.IsZero())
}

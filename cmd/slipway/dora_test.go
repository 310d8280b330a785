package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLI_DoraFromUpsWithCommits: two ups with --commit and --commit-time,
// then dora reports two deployments and their lead times (JSON and text);
// an environment that does not exist and a bad --since are refused.
func TestCLI_DoraFromUpsWithCommits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig}
	// No CI variable may name another commit (the flags win anyway).
	noCI := []string{"-GITHUB_SHA", "-CI_COMMIT_SHA", "-GIT_COMMIT"}
	now := time.Now().UTC().Truncate(time.Second)
	for i, c := range []struct{ sha, greeting string }{{"1111111aaaa", "one"}, {"2222222bbbb", "two"}} {
		committed := now.Add(-time.Duration(2-i) * time.Hour) // 2h, then 1h before now
		r := exe(t, dir, noCI, append([]string{"up", "--env", "dora-a", "--kind", "dev", "--set", "GREETING=" + c.greeting,
			"--commit", c.sha, "--commit-time", committed.Format(time.RFC3339)}, k...)...)
		require.Equal(t, 0, r.code, r.stderr)
		if i == 0 {
			destroyAfter(t, dir, "dora-a")
		}
	}
	took := time.Since(now)

	r := exe(t, dir, nil, "--json", "dora", "--env", "dora-a", "--since", "7d")
	require.Equal(t, 0, r.code, r.stderr)
	res := results(t, envelopeOf(t, r))
	require.Len(t, res, 1)
	assert.Equal(t, "dora-a", res[0]["environment"])
	d := res[0]["dora"].(map[string]any)
	assert.EqualValues(t, 2, d["deployments"])
	assert.EqualValues(t, 0, d["failures"])
	lead := d["leadTime"].(map[string]any)
	assert.EqualValues(t, 2, lead["n"])
	// Lead times 2h+x and 1h+y with x, y within the test's run time: the
	// median is their mean, 1.5h plus at most that.
	median := lead["medianSeconds"].(float64)
	assert.GreaterOrEqual(t, median, 5400.0)
	assert.LessOrEqual(t, median, 5400.0+took.Seconds()+1)
	assert.InDelta(t, 2.0/7.0, d["deploymentsPerDay"], 1e-9)

	r = exe(t, dir, nil, "dora", "--env", "dora-a", "--since", "7d")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "deployment frequency   0.29 per day (2 deployments)")
	assert.Contains(t, r.stdout, "(2 deployments with a commit time)")

	r = exe(t, dir, nil, "--json", "dora", "--env", "dora-a,dora-nosuch")
	assert.Equal(t, ExitError, r.code, r.stderr)
	env := envelopeOf(t, r)
	assert.Equal(t, "unknown_environment", env["error"].(map[string]any)["code"])
	assert.Contains(t, r.stderr, `"dora-nosuch" does not exist`)

	r = exe(t, dir, nil, "dora", "--env", "dora-a", "--since", "a month")
	assert.Equal(t, ExitError, r.code)
	assert.True(t, strings.Contains(r.stderr, `--since "a month" is not a window; use e.g. --since 30d`), r.stderr)
}

package stackhistory

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// golden reads the history entries of testdata/backend (a file backend a
// real up, refresh and destroy of stack "dev" of project "hist" left, with
// a plain and a secret configuration value), newest first, and what the
// pulumi CLI printed for them (`pulumi stack history --json`, without
// --show-secrets).
func golden(t *testing.T) (entries [][]byte, cli []auto.UpdateSummary) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "backend", ".pulumi", "history", "hist", "dev", "*.history.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	slices.Sort(files)
	slices.Reverse(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		entries = append(entries, b)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "cli-history.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cli))
	return entries, cli
}

func TestSummaries_AreWhatTheCLIPrints(t *testing.T) {
	entries, cli := golden(t)
	got, ok, err := Summaries(entries, false)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, cli, got)
	kinds := []string{}
	for _, s := range got {
		kinds = append(kinds, s.Kind)
	}
	assert.Equal(t, []string{"destroy", "refresh", "update"}, kinds, "newest first: the golden backend has one of each")
	secret := got[0].Config["hist:token"]
	assert.True(t, secret.Secret)
	assert.Empty(t, secret.Value, "a secret value is never read from the store")
	assert.Equal(t, "hi", got[0].Config["hist:greeting"].Value)

	_, ok, err = Summaries(entries, true)
	require.NoError(t, err)
	assert.False(t, ok, "a secret to decrypt is left to the CLI")
}

func TestSummaries_InProgressAndBroken(t *testing.T) {
	got, ok, err := Summaries([][]byte{[]byte(`{"kind":"update","startTime":1700000000,"message":"","environment":null,"config":{},"result":"in-progress","endTime":0}`)}, true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, got, 1)
	assert.Equal(t, "2023-11-14T22:13:20.000Z", got[0].StartTime)
	assert.Nil(t, got[0].EndTime, "an update that has not ended has no end time")
	assert.Nil(t, got[0].ResourceChanges)

	_, _, err = Summaries([][]byte{[]byte(`{"kind":`)}, false)
	assert.Error(t, err)
}

func TestParse_OnlyTheAutomationAPIsHistoryCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want query
		ok   bool
	}{
		{args: []string{"stack", "history", "--json", "--show-secrets", "--page-size", "1", "--page", "1", "--stack", "dev"},
			want: query{stack: "dev", showSecrets: true, pageSize: 1, page: 1}, ok: true},
		{args: []string{"--non-interactive", "stack", "history", "--json", "--page-size", "20", "--page", "2", "--stack", "dev"},
			want: query{stack: "dev", pageSize: 20, page: 2}, ok: true},
		{args: []string{"stack", "history", "--json", "--stack", "dev"}, want: query{stack: "dev", pageSize: cliPageSize, page: 1}, ok: true},
		{args: []string{"stack", "history", "--stack", "dev"}},                                             // not JSON
		{args: []string{"stack", "history", "--json"}},                                                     // no stack
		{args: []string{"stack", "history", "--json", "--stack", "dev", "--full-dates"}},                   // a flag it does not know
		{args: []string{"stack", "history", "--json", "--stack", "dev", "--page-size", "x"}},               // not a number
		{args: []string{"stack", "history", "--json", "--stack"}},                                          // no value
		{args: []string{"stack", "output", "--json", "--stack", "dev"}},                                    // another command
		{args: []string{"up", "--yes", "--stack", "dev"}},                                                  // another command
		{args: []string{"stack", "history", "--json", "--stack", "dev", "--config-file", "Pulumi.x.yaml"}}, // a flag it does not know
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			q, ok := parse(tc.args)
			assert.Equal(t, tc.ok, ok)
			if tc.ok {
				assert.Equal(t, tc.want, q)
			}
		})
	}
}

// cli records the commands that reached the CLI.
type cli struct{ runs []string }

func (c *cli) Run(_ context.Context, _ string, _ io.Reader, _, _ []io.Writer, _ []string, args ...string) (string, string, int, error) {
	c.runs = append(c.runs, strings.Join(args, " "))
	return "[]", "", 0, nil
}

func (c *cli) Version() semver.Version { return semver.MustParse("3.274.1") }

func TestCommand_AnswersFromTheStoreOrLeavesItToTheCLI(t *testing.T) {
	ctx := context.Background()
	entries, want := golden(t)
	var asked []query
	inner := &cli{}
	c := Command{PulumiCommand: inner, Read: func(_ context.Context, stack string, pageSize, page int) ([][]byte, bool) {
		asked = append(asked, query{stack: stack, pageSize: pageSize, page: page})
		if stack != "dev" {
			return nil, false // a stack the store does not hold
		}
		return entries[:min(pageSize, len(entries))], true
	}}
	var streamed bytes.Buffer
	out, _, code, err := c.Run(ctx, "", nil, []io.Writer{&streamed}, nil, nil, "stack", "history", "--json", "--page-size", "1", "--page", "1", "--stack", "dev")
	require.NoError(t, err)
	assert.Zero(t, code)
	assert.Empty(t, inner.runs, "answered from the store")
	assert.Equal(t, []query{{stack: "dev", pageSize: 1, page: 1}}, asked)
	assert.Equal(t, out, streamed.String(), "additional output streams get stdout, as from the CLI")
	var got []auto.UpdateSummary
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, want[:1], got)

	_, _, _, err = c.Run(ctx, "", nil, nil, nil, nil, "stack", "history", "--json", "--show-secrets", "--page-size", "1", "--page", "1", "--stack", "dev")
	require.NoError(t, err)
	_, _, _, err = c.Run(ctx, "", nil, nil, nil, nil, "stack", "history", "--json", "--page-size", "1", "--page", "1", "--stack", "other")
	require.NoError(t, err)
	_, _, _, err = c.Run(ctx, "", nil, nil, nil, nil, "stack", "export", "--stack", "dev")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"stack history --json --show-secrets --page-size 1 --page 1 --stack dev", // a secret to decrypt
		"stack history --json --page-size 1 --page 1 --stack other",              // the store cannot say
		"stack export --stack dev", // not history
	}, inner.runs)
}

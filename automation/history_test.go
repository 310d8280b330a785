package automation

import (
	"context"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/opthistory"
	autoup "github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/optrefresh"
)

// TestUp_HistoryIsReadFromTheStore: the history the Automation API reads
// after an up (and refresh) comes from the file backend's store, with no
// `stack history` process, and is what the CLI prints for the same stack;
// a request that needs a secret decrypted still goes to the CLI.
func TestUp_HistoryIsReadFromTheStore(t *testing.T) {
	ctx := context.Background()
	e, cli := countingEngine(t, "")
	prog := Program{Project: "hist", Stack: "dev", Config: map[string]ConfigValue{"greeting": {Value: "hi"}, "token": {Value: "s3cr3t", Secret: true}},
		Run: func(ctx *pulumi.Context) error {
			ctx.Export("greeting", pulumi.String("hi"))
			return nil
		}}
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)

	// What the CLI prints for the stack, through a workspace of its own.
	viaCLI := func(pageSize, page int) []auto.UpdateSummary {
		t.Helper()
		ws, err := e.e.Workspace(ctx, "hist")
		require.NoError(t, err)
		s, err := auto.SelectStack(ctx, "dev", ws)
		require.NoError(t, err)
		cli.count("")
		h, err := s.History(ctx, pageSize, page, opthistory.ShowSecrets(false))
		require.NoError(t, err)
		require.Equal(t, 1, cli.count("stack history"), "the reference is the CLI's")
		return h
	}

	cli.count("")
	res, err := st.Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("stack history"), "Slipway's up runs no `stack history`")
	assert.Equal(t, map[string]int{"create": 1}, res.Summary)

	up, err := st.Auto().Up(ctx, autoup.ShowSecrets(false))
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("stack history"), "the Automation API's up, asked without secrets, runs none either")
	h := viaCLI(1, 1)
	require.Len(t, h, 1)
	assert.Equal(t, h[0], up.Summary, "the summary is the one the CLI gives")
	assert.Equal(t, "update", up.Summary.Kind)
	assert.Equal(t, "succeeded", up.Summary.Result)
	require.NotNil(t, up.Summary.ResourceChanges)
	assert.Equal(t, map[string]int{"same": 1}, *up.Summary.ResourceChanges)
	assert.True(t, up.Summary.Config["hist:token"].Secret)
	assert.Empty(t, up.Summary.Config["hist:token"].Value, "no secret in the summary")
	assert.Equal(t, "hi", up.Summary.Config["hist:greeting"].Value)

	_, err = st.Refresh(ctx, optrefresh.Message("reconcile"))
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("stack history"), "nor does a refresh")
	all, err := st.Auto().History(ctx, 20, 1, opthistory.ShowSecrets(false))
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("stack history"))
	assert.Equal(t, viaCLI(20, 1), all, "the whole history (an up, an up, a refresh) is the CLI's")
	require.Len(t, all, 3)
	assert.Equal(t, "refresh", all[0].Kind)
	assert.Contains(t, all[0].Message, "reconcile")
	assert.Equal(t, viaCLI(0, 0), mustHistory(ctx, t, st, 0, 0), "without a page size, the CLI's default page")
	assert.Equal(t, 0, cli.count("stack history"))
	assert.Equal(t, viaCLI(1, 2), mustHistory(ctx, t, st, 1, 2), "a later page")

	// The Automation API's default asks for secrets in plain text: only the
	// CLI can decrypt them.
	_, err = st.Auto().Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, cli.count("stack history"), "a secret to decrypt goes to the CLI")
}

func mustHistory(ctx context.Context, t *testing.T, st *Stack, pageSize, page int) []auto.UpdateSummary {
	t.Helper()
	h, err := st.Auto().History(ctx, pageSize, page, opthistory.ShowSecrets(false))
	require.NoError(t, err)
	return h
}

// BenchmarkUpHistory times what the Automation API does after an up to
// fill in its summary, `History(1, 1)` without secrets, on a stack of the
// file backend with ten updates: side=bare through a plain LocalWorkspace
// (a `pulumi stack history` process), side=slipway through the stack's
// workspace, which reads the entry from the backend's store. Both sides
// check that they got the newest update.
//
//	go test -run '^$' -bench UpHistory -benchtime 20x -count 5 ./automation/
func BenchmarkUpHistory(b *testing.B) {
	ctx := context.Background()
	e, cli := countingEngine(b, "")
	prog := Program{Project: "hist", Stack: "dev", Config: map[string]ConfigValue{"greeting": {Value: "hi"}},
		Run: func(ctx *pulumi.Context) error { return nil }}
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(b, err)
	for range 10 {
		_, err := st.Up(ctx)
		require.NoError(b, err)
	}
	ws, err := e.e.Workspace(ctx, "hist")
	require.NoError(b, err)
	plain, err := auto.SelectStack(ctx, "dev", ws)
	require.NoError(b, err)
	for side, s := range map[string]*auto.Stack{"bare": &plain, "slipway": st.Auto()} {
		b.Run("side="+side, func(b *testing.B) {
			cli.count("")
			for b.Loop() {
				h, err := s.History(ctx, 1, 1, opthistory.ShowSecrets(false))
				if err != nil || len(h) != 1 || h[0].Kind != "update" {
					b.Fatalf("history: %v, %v", h, err)
				}
			}
			if got := cli.count("stack history"); (side == "bare") != (got > 0) {
				b.Fatalf("side %s ran %d `stack history` processes", side, got)
			}
		})
	}
}

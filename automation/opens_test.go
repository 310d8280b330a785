package automation_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
)

// TestOperation_OpensTheStoreOnce: each operation opens the backend's
// store once and hands it down to every helper that needs it.
func TestOperation_OpensTheStoreOnce(t *testing.T) {
	ctx := context.Background()
	e := notifyEngine(t, ctx, &recorder{})
	lookup := func(v string) (automation.Program, error) { return exporting("p", "dev", v), nil }
	count := func(t *testing.T, op string, f func() error) {
		t.Helper()
		n, restore := automation.CountBackendOpens()
		defer restore()
		require.NoError(t, f(), op)
		t.Logf("%s: %d open(s) of the backend's store", op, n.Load())
		assert.EqualValues(t, 1, n.Load(), op)
	}
	var st *automation.Stack
	count(t, "open (UpsertStack)", func() (err error) {
		st, err = e.UpsertStack(ctx, exporting("p", "dev", "v1"))
		return err
	})
	count(t, "up", func() error {
		_, err := st.Up(ctx)
		return err
	})
	count(t, "deploy", func() error {
		_, err := e.Deploy(ctx, automation.Release{Version: "v2", Program: exporting("p", "dev", "v2")}, lookup)
		return err
	})
	count(t, "rollback", func() error {
		_, _, err := e.Rollback(ctx, "p", "dev", lookup)
		return err
	})
	count(t, "promote", func() error {
		_, err := e.Promote(ctx, []automation.Stage{{Name: "dev", Release: automation.Release{Version: "v3", Program: exporting("p", "dev", "v3")}},
			{Name: "prod", Release: automation.Release{Version: "v3", Program: exporting("p", "prod", "v3")}}}, lookup)
		return err
	})
	count(t, "ephemeral create", func() error {
		_, _, err := e.CreateEphemeral(ctx, exporting("p", "pr-1", "v1"), "1", time.Hour)
		return err
	})
	count(t, "ephemeral destroy", func() error {
		_, err := e.DestroyEphemeral(ctx, "p", "pr-1")
		return err
	})
	for _, s := range []string{"pr-2", "pr-3"} {
		_, _, err := e.CreateEphemeral(ctx, exporting("p", s, "v1"), s, time.Nanosecond)
		require.NoError(t, err)
	}
	count(t, "gc", func() error {
		out, err := e.GC(ctx, "p", time.Now().Add(time.Minute), 2)
		for _, r := range out {
			require.NoError(t, r.Err)
		}
		require.Len(t, out, 2)
		return err
	})
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// TestRun_HeldLockExitsFourThroughEveryWrapping: while a live owner (this
// test process) holds a stack's lock through the backend's store, and the
// checkpoint it writes does not load yet, a preview (which takes no lock
// and reads the checkpoint half-written) stops with the one lock error
// (statestore's StackLockedError naming the live owner, wrapped in the
// operation's error): exit 4 and "stack_locked" in the JSON envelope, not
// exit 1; the stack is left as it was (the lock and the checkpoint
// untouched).
func TestRun_HeldLockExitsFourThroughEveryWrapping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := t.TempDir()
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(t.TempDir()),
		automation.WithResolver(toolchain.New(toolchain.WithLog(io.Discard))))
	require.NoError(t, err)
	_, err = e.UpsertStack(ctx, automation.Program{Project: tiny.Project, Stack: "dev", Run: func(*pulumi.Context) error { return nil }})
	require.NoError(t, err)

	store, err := e.Store(ctx)
	require.NoError(t, err)
	defer func() { assert.NoError(t, store.Close()) }()
	unlock, err := store.Lock(ctx, tiny.Project, "dev")
	require.NoError(t, err)
	defer func() { assert.NoError(t, unlock(ctx)) }()
	// The owner is mid-write: the checkpoint is cut short.
	cp, err := store.ReadCheckpoint(ctx, tiny.Project, "dev")
	require.NoError(t, err)
	half := cp.Data[:len(cp.Data)/2]
	require.NoError(t, store.WriteCheckpoint(ctx, statestore.Checkpoint{Key: cp.Key, Data: half}))

	// The stack is refused before any cluster is contacted: a kubeconfig of none will do.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {}}]
current-context: none
`), 0o600))
	var out, errb bytes.Buffer
	code := Run(ctx, []string{"--dir", dir, "--json", "preview", "--env", "dev", "--kubeconfig", kubeconfig}, &out, &errb, Definitions(tiny))
	require.Equal(t, ExitLocked, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	var env struct {
		Error struct {
			Code     string `json:"code"`
			ExitCode int    `json:"exitCode"`
			Message  string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &env), out.String())
	assert.Equal(t, "stack_locked", env.Error.Code)
	assert.Equal(t, ExitLocked, env.Error.ExitCode)
	assert.Contains(t, env.Error.Message, "is locked by")
	assert.Contains(t, env.Error.Message, "[alive:", "the message names the live owner")

	locks, err := store.Locks(ctx, tiny.Project, "dev")
	require.NoError(t, err)
	assert.Len(t, locks, 1, "the live owner's lock is kept")
	now, err := store.ReadCheckpoint(ctx, tiny.Project, "dev")
	require.NoError(t, err)
	assert.Equal(t, half, now.Data, "nothing restores the checkpoint under a live owner")
}

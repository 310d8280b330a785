package fault_test

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/slipwaytest/fault"
)

// sleeper is a child process of TestKillAt_KillsTheChildAndItsTreeAtItsSignal:
// it starts a process of its own, signals its PID, then waits forever.
func sleeper(ctx context.Context) error {
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		return err
	}
	fault.Signal("ready")
	<-ctx.Done()
	return nil
}

// TestKillAt_KillsTheChildAndItsTreeAtItsSignal: the injector waits for
// the child's signal, then kills the child and what it started, at once.
func TestKillAt_KillsTheChildAndItsTreeAtItsSignal(t *testing.T) {
	t.Parallel()
	p := fault.StartChild(t, "sleeper")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, fault.KillAt(p, "ready")(ctx))
	assert.ErrorIs(t, syscall.Kill(p.Pid(), 0), syscall.ESRCH, "the child is gone")
	_, err := p.KillNine(time.Second)
	assert.Error(t, err, "nothing is left to kill")
}

// TestProcess_KillNineTakesTheWholeTree: the child and the process it
// started are killed together.
func TestProcess_KillNineTakesTheWholeTree(t *testing.T) {
	t.Parallel()
	p := fault.StartChild(t, "sleeper")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.WaitSignal(ctx, "ready"))
	procs, err := p.KillNine(time.Minute)
	require.NoError(t, err)
	require.Len(t, procs, 2, "the child and its sleep")
	assert.Equal(t, p.Pid(), procs[0])
}

// TestKillAt_FailsWhenTheChildEndsBeforeItsSignal: the fault cannot be
// made, and the error carries the child's own.
func TestKillAt_FailsWhenTheChildEndsBeforeItsSignal(t *testing.T) {
	t.Parallel()
	p := fault.StartChild(t, "quitter")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := fault.KillAt(p, "ready")(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "before it signalled \"ready\"")
	assert.Contains(t, err.Error(), "child quitter: gave up early")
}

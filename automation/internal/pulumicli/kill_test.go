//go:build linux

package pulumicli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blang/semver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// treeCLI is a fake pulumi CLI that ignores SIGINT and starts two
// "plugins": one child and one in a session (and process group) of its
// own, as plugins may be. It writes their PIDs to $PIDS, then waits.
func treeCLI(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "pulumi"), []byte("#!/bin/sh\n"+
		"trap '' INT\nsleep 1000 &\na=$!\nsetsid sleep 1000 &\nb=$!\necho \"$$ $a $b\" > \"$PIDS.tmp\"\nmv \"$PIDS.tmp\" \"$PIDS\"\nwait\n"), 0o755))
	return root
}

// alive reports whether pid runs (a zombie has ended).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// startTree runs the tree CLI under ctx and returns its PIDs once written
// and a channel that receives Run's error.
func startTree(t *testing.T, ctx context.Context, group bool) ([]int, <-chan error) {
	t.Helper()
	c := New(treeCLI(t), semver.MustParse("3.0.0"))
	c.Group = group
	pidFile := filepath.Join(t.TempDir(), "pids")
	errc := make(chan error, 1)
	go func() {
		_, _, _, err := c.Run(ctx, t.TempDir(), nil, nil, nil, []string{"PIDS=" + pidFile}, "up")
		errc <- err
	}()
	var pids []int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			p, err := strconv.Atoi(f)
			require.NoError(t, err)
			pids = append(pids, p)
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	require.Len(t, pids, 3)
	for _, p := range pids {
		require.True(t, alive(p), "pid %d runs before the cancellation", p)
	}
	t.Cleanup(func() {
		for _, p := range pids {
			if alive(p) {
				_ = syscallKill(p)
			}
		}
	})
	return pids, errc
}

// TestPulumiCLI_KillCauseKillsTheWholeTreeAtOnce: a cancellation whose
// cause wraps ErrKill (a fleet runner past its renew deadline) kills the
// CLI and every plugin, one in a process group of its own included, at
// once, without the interrupt grace.
func TestPulumiCLI_KillCauseKillsTheWholeTreeAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	pids, errc := startTree(t, ctx, true)
	start := time.Now()
	cancel(fmt.Errorf("deadline passed: %w", ErrKill))
	select {
	case err := <-errc:
		require.Error(t, err)
	case <-time.After(interruptGrace):
		t.Fatal("the CLI was not killed before the interrupt grace")
	}
	assert.Less(t, time.Since(start), interruptGrace/2)
	require.Eventually(t, func() bool { return !alive(pids[1]) && !alive(pids[2]) }, 2*time.Second, 10*time.Millisecond,
		"every plugin is killed with the CLI")
	assert.False(t, alive(pids[0]))
}

// TestPulumiCLI_InterruptIgnored_TreeKilledAfterTheGrace: an ordinary
// cancellation interrupts the CLI; one that does not end within the grace
// is killed with its whole tree (plugins are never left running).
func TestPulumiCLI_InterruptIgnored_TreeKilledAfterTheGrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pids, errc := startTree(t, ctx, false)
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		require.Error(t, err)
	case <-time.After(interruptGrace + 10*time.Second):
		t.Fatal("the CLI was never killed")
	}
	assert.GreaterOrEqual(t, time.Since(start), interruptGrace-time.Second, "the CLI had its grace")
	require.Eventually(t, func() bool { return !alive(pids[1]) && !alive(pids[2]) }, 2*time.Second, 10*time.Millisecond,
		"every plugin is killed with the CLI")
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

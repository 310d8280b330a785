package proctree

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tree "github.com/slipwayhq/slipway/automation/proctree"
)

func TestKillNine_KillsTheWholeTreeAndWaitsForIt(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300; true")
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return len(tree.Below(cmd.Process.Pid)) == 2 }, 10*time.Second, 5*time.Millisecond,
		"the shell starts its two sleeps")

	procs, err := KillNine(cmd.Process.Pid, time.Minute)
	require.NoError(t, err)
	require.Len(t, procs, 3, "the shell and both sleeps")
	assert.Equal(t, cmd.Process.Pid, procs[0])
	for _, p := range procs[1:] {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err == nil { // not yet reaped by its new parent: it must be a zombie
			fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			assert.Equal(t, "Z", fields[0], "process %d has ended", p)
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	ws, _ := ee.Sys().(syscall.WaitStatus)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "killed by SIGKILL: %v", err)
}

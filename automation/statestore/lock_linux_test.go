package statestore

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The same cases against the real system: a process that has exited, a
// zombie, this process's own PID recorded before it started (a reused
// PID), and this process itself.
func TestLockLiveness_RealProcesses(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)

	exited := exec.Command("true")
	require.NoError(t, exited.Run())
	got, why := Lock{PID: exited.Process.Pid, Hostname: host, Timestamp: time.Now()}.Liveness()
	assert.Equal(t, Dead, got, why)

	// A child that has exited but is not reaped yet is a zombie: waitid
	// with WNOWAIT returns once it exits and leaves it unreaped.
	zombie := exec.Command("true")
	require.NoError(t, zombie.Start())
	var info unix.Siginfo
	require.NoError(t, unix.Waitid(unix.P_PID, zombie.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil))
	got, why = Lock{PID: zombie.Process.Pid, Hostname: host, Timestamp: time.Now()}.Liveness()
	assert.Equal(t, Dead, got, why)
	assert.Contains(t, why, "zombie")
	require.NoError(t, zombie.Wait())

	self := Lock{PID: os.Getpid(), Hostname: host, Timestamp: time.Now()}
	got, why = self.Liveness()
	assert.Equal(t, Alive, got, why)

	self.Timestamp = time.Now().Add(-240 * time.Hour) // taken long before this process started
	got, why = self.Liveness()
	assert.Equal(t, Dead, got, why)
	assert.Contains(t, why, "was reused")

	self.Hostname = host + "-elsewhere"
	got, why = self.Liveness()
	assert.Equal(t, Unknown, got, why)
}

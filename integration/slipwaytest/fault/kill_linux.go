package fault

import (
	"os/exec"
	"syscall"
	"time"

	"github.com/slipwayhq/slipway/integration/internal/proctree"
)

// setGroup starts cmd in a process group of its own.
func setGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killTree kills pid and every process below it with SIGKILL (see
// proctree.KillNine).
func killTree(pid int, timeout time.Duration) ([]int, error) { return proctree.KillNine(pid, timeout) }

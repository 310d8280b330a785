//go:build unix

package pulumicli

import (
	"os/exec"
	"syscall"
)

// setpgid starts cmd in a process group of its own.
func setpgid(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

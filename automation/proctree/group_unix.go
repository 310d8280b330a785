//go:build unix && !linux

package proctree

import "syscall"

func killGroup(pid int, group bool) {
	if group {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

//go:build !linux

package fault

import (
	"errors"
	"os/exec"
	"time"
)

// setGroup does nothing outside Linux.
func setGroup(*exec.Cmd) {}

// killTree is Linux-only: it needs pidfds to wait for every killed process.
func killTree(int, time.Duration) ([]int, error) {
	return nil, errors.New("fault: killing a process tree is supported on Linux only")
}

// Package proctree kills a whole process tree the way a crash does — every
// process at once, with SIGKILL — for the crash-recovery tests, and waits
// until each has ended. The tree is read by the engine's own
// automation/proctree.Below.
package proctree

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	tree "github.com/slipwayhq/slipway/automation/proctree"
)

// Stop stops pid and every process below it with SIGSTOP, pass after pass
// until a pass finds no process it had not stopped (so nothing spawns
// more), and returns them, pid first.
func Stop(pid int) ([]int, error) {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("proctree: stopping %d: %w", pid, err)
	}
	procs := []int{pid}
	for {
		var added bool
		for _, p := range tree.Below(pid) {
			if !slices.Contains(procs, p) {
				procs, added = append(procs, p), true
				_ = syscall.Kill(p, syscall.SIGSTOP)
			}
		}
		if !added {
			return procs, nil
		}
	}
}

// KillNine stops pid and every process below it (SIGSTOP, pass after pass
// until a pass finds no process it had not stopped, so nothing spawns
// more), then sends each SIGKILL and waits, through a pidfd opened before
// the kill, until every one has ended (a killed process lives until the
// kernel has torn it down; a zombie counts as ended). It returns the PIDs
// it killed, pid first. The caller still reaps pid if it is its child.
func KillNine(pid int, timeout time.Duration) ([]int, error) {
	procs, err := Stop(pid)
	if err != nil {
		return nil, err
	}
	fds := make([]int, 0, len(procs))
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	for _, p := range procs {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			return procs, fmt.Errorf("proctree: pidfd of %d (stopped, so it cannot have exited): %w", p, err)
		}
		fds = append(fds, fd)
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
			return procs, fmt.Errorf("proctree: killing %d: %w", p, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for i, fd := range fds {
		if err := awaitExit(fd, time.Until(deadline)); err != nil {
			return procs, fmt.Errorf("proctree: process %d: %w", procs[i], err)
		}
	}
	return procs, nil
}

// awaitExit waits until the process behind a pidfd has ended.
func awaitExit(fd int, within time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(max(within, 0).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n != 1 {
			return errors.New("did not end after SIGKILL")
		}
		return nil
	}
}

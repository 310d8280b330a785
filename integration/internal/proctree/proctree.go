// Package proctree kills a whole process tree the way a crash does — every
// process at once, with SIGKILL — for the crash-recovery tests.
package proctree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Below returns the PIDs of every process below pid, read from /proc.
func Below(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// KillNine stops pid and every process below it (SIGSTOP, pass after pass
// until a pass finds no process it had not stopped, so nothing spawns
// more), then sends each SIGKILL and waits, through a pidfd opened before
// the kill, until every one has ended (a killed process lives until the
// kernel has torn it down; a zombie counts as ended). It returns the PIDs
// it killed, pid first. The caller still reaps pid if it is its child.
func KillNine(pid int, timeout time.Duration) ([]int, error) {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("proctree: stopping %d: %w", pid, err)
	}
	procs := []int{pid}
	for {
		var added bool
		for _, p := range Below(pid) {
			if !slices.Contains(procs, p) {
				procs, added = append(procs, p), true
				_ = syscall.Kill(p, syscall.SIGSTOP)
			}
		}
		if !added {
			break
		}
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

//go:build linux

// Package proctree kills an engine's whole process tree at once: the
// process, every process below it (read from /proc, so plugins that put
// themselves in process groups of their own are found too) and its process
// group, all with SIGKILL.
package proctree

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
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

// Kill stops pid and every process below it with SIGSTOP, pass after pass
// until a pass finds no process it had not stopped (so nothing forks or is
// reparented away meanwhile), then sends SIGKILL to each and to the process
// group pid leads when group is true. It returns the PIDs it signalled, pid
// first. The caller still reaps pid.
func Kill(pid int, group bool) []int {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
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
	if group {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	for _, p := range procs {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return procs
}

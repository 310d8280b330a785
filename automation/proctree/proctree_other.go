//go:build !linux

package proctree

import "os"

// Below returns nothing where /proc is not read.
func Below(int) []int { return nil }

// Kill kills pid (and its process group where the platform has them).
func Kill(pid int, group bool) []int {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
	killGroup(pid, group)
	return []int{pid}
}

//go:build unix

package statestore

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

var (
	errNoProcess  error = syscall.ESRCH
	errPermission error = syscall.EPERM
)

// osProbe reads liveness from the running system.
type osProbe struct{}

var sys probe = osProbe{}

func (osProbe) hostname() (string, error) { return os.Hostname() }

func (osProbe) signal0(pid int) error { return syscall.Kill(pid, 0) }

func (osProbe) stat(pid int) ([]byte, error) { return os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)) }

func (osProbe) bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	return parseBootTime(b)
}

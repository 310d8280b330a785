//go:build !unix

package automation

import "os/exec"

// setpgid does nothing where there are no process groups.
func setpgid(*exec.Cmd) {}

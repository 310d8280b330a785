//go:build !unix

package pulumicli

import "os/exec"

// setpgid does nothing where there are no process groups.
func setpgid(*exec.Cmd) {}

// Package pulumicli runs the pulumi CLI for the engine (package
// automation): the auto.PulumiCommand of every workspace, with the
// Automation API's conventions, process-group isolation for a fenced
// engine, and an interrupt that becomes a kill of the CLI's whole process
// tree (ErrKill, or a grace period that ran out).
package pulumicli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/slipwayhq/slipway/automation/proctree"
)

// Command runs the pulumi CLI at Root/bin/pulumi, whose version the
// toolchain resolver has already established (it checks a CLI found on
// PATH or given to it, and builds the cached one itself).
// auto.NewPulumiCommand would start `pulumi version` once more for every
// Engine; Run does exactly what the Automation API's own command does.
type Command struct {
	bin     string
	version semver.Version
	// Group starts the CLI in a process group of its own (a fenced engine,
	// see automation.WithFence), so that killing its tree cannot reach the caller.
	Group bool
}

var _ auto.PulumiCommand = Command{}

// New returns the command of the CLI under root, of version.
func New(root string, version semver.Version) Command {
	return Command{bin: filepath.Join(root, "bin", "pulumi"), version: version}
}

// Version implements auto.PulumiCommand.
func (c Command) Version() semver.Version { return c.version }

// Run implements auto.PulumiCommand as the Automation API does: always
// non-interactive, PULUMI_AUTOMATION_API set, the CLI's directory first in
// PATH, interrupted (then killed) when ctx ends.
func (c Command) Run(ctx context.Context, workdir string, stdin io.Reader, additionalOutput, additionalErrorOutput []io.Writer,
	additionalEnv []string, args ...string) (string, string, int, error) {
	flags := args
	if i := slices.Index(args, "--"); i >= 0 {
		flags = args[:i]
	}
	if !slices.Contains(flags, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir = workdir
	env := append(os.Environ(), additionalEnv...)
	env = append(env, "PULUMI_AUTOMATION_API=true")
	cmd.Env = pathFirst(env, filepath.Dir(c.bin))
	var stdout, stderr bytes.Buffer
	cmd.Stdout = io.MultiWriter(append(slices.Clone(additionalOutput), &stdout)...)
	cmd.Stderr = io.MultiWriter(append(slices.Clone(additionalErrorOutput), &stderr)...)
	cmd.Stdin = stdin
	if c.Group {
		setpgid(cmd)
	}
	// A cancellation whose cause wraps ErrKill kills the CLI's whole tree
	// (plugins included) at once; any other interrupts the CLI, and kills
	// the tree if it has not ended WaitDelay later.
	cmd.Cancel = func() error {
		if errors.Is(context.Cause(ctx), ErrKill) {
			proctree.Kill(cmd.Process.Pid, c.Group)
			return nil
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			proctree.Kill(cmd.Process.Pid, c.Group)
		}
		return nil
	}
	// exec's WaitDelay kills only the CLI itself, and is the backstop: the
	// tree (plugins too) is killed interruptGrace after an interrupt.
	cmd.WaitDelay = interruptGrace + 5*time.Second
	code := -2 // the Automation API's unknownErrorCode
	err := cmd.Start()
	if err == nil {
		done := make(chan struct{})
		stopKill := context.AfterFunc(ctx, func() {
			t := time.NewTimer(interruptGrace)
			defer t.Stop()
			select {
			case <-t.C:
				proctree.Kill(cmd.Process.Pid, c.Group)
			case <-done:
			}
		})
		err = cmd.Wait()
		close(done)
		stopKill()
	}
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err == nil {
		code = 0
	}
	return stdout.String(), stderr.String(), code, err
}

// interruptGrace is how long an interrupted CLI has to end before its
// tree is killed.
const interruptGrace = 10 * time.Second

// ErrKill, wrapped by the cause of an engine operation's cancelled context
// (context.WithCancelCause), makes the engine's whole process tree — the
// pulumi CLI and its plugins — be killed with SIGKILL at once instead of
// interrupted: for a holder that must stop writing now (a fleet runner
// whose Lease deadline passed).
var ErrKill = errors.New("automation: the engine is killed")

// pathFirst returns env with dir first in its PATH.
func pathFirst(env []string, dir string) []string {
	out := slices.Clone(env)
	for i, e := range out {
		if len(e) >= 5 && strings.EqualFold(e[:5], "PATH=") {
			if e[5:] == "" {
				out[i] = "PATH=" + dir
			} else {
				out[i] = "PATH=" + dir + string(os.PathListSeparator) + e[5:]
			}
			return out
		}
	}
	return append(out, "PATH="+dir)
}

package automation

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// pulumiCLI runs the pulumi CLI at Root/bin/pulumi, whose version the
// toolchain resolver has already established (it checks a CLI found on
// PATH or given with WithPulumi, and builds the cached one itself).
// auto.NewPulumiCommand would start `pulumi version` once more for every
// Engine; Run does exactly what the Automation API's own command does.
type pulumiCLI struct {
	bin     string
	version semver.Version
}

var _ auto.PulumiCommand = pulumiCLI{}

// newPulumiCLI returns the command of the CLI under root, of version.
func newPulumiCLI(root string, version semver.Version) pulumiCLI {
	return pulumiCLI{bin: filepath.Join(root, "bin", "pulumi"), version: version}
}

// Version implements auto.PulumiCommand.
func (c pulumiCLI) Version() semver.Version { return c.version }

// Run implements auto.PulumiCommand as the Automation API does: always
// non-interactive, PULUMI_AUTOMATION_API set, the CLI's directory first in
// PATH, interrupted (then killed) when ctx ends.
func (c pulumiCLI) Run(ctx context.Context, workdir string, stdin io.Reader, additionalOutput, additionalErrorOutput []io.Writer,
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
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			_ = cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	code := -2 // the Automation API's unknownErrorCode
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err == nil {
		code = 0
	}
	return stdout.String(), stderr.String(), code, err
}

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

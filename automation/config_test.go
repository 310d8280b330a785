package automation

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/internal/engine"
)

// countingCLI records the pulumi commands an engine runs.
type countingCLI struct {
	auto.PulumiCommand
	mu   sync.Mutex
	runs []string
}

func (c *countingCLI) Run(ctx context.Context, workdir string, stdin io.Reader, out, errOut []io.Writer, env []string, args ...string) (string, string, int, error) {
	c.mu.Lock()
	c.runs = append(c.runs, strings.Join(args, " "))
	c.mu.Unlock()
	return c.PulumiCommand.Run(ctx, workdir, stdin, out, errOut, env, args...)
}

// count returns how many commands began with prefix (after the flags the
// Automation API adds) since the last count, and resets the record.
func (c *countingCLI) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.runs {
		if strings.HasPrefix(strings.TrimPrefix(r, "--non-interactive "), prefix) {
			n++
		}
	}
	c.runs = nil
	return n
}

// argsWith returns the recorded commands (since the last count) whose
// arguments contain s.
func (c *countingCLI) argsWith(s string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.runs {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

// withCommand makes the engine run its pulumi commands through c.
func withCommand(c *countingCLI) EngineOption {
	return func(cfg *engine.Config) {
		cfg.WrapCommand = func(p auto.PulumiCommand) auto.PulumiCommand {
			c.PulumiCommand = p
			return c
		}
	}
}

// countingEngine is an engine on a file backend whose CLI calls are counted.
func countingEngine(t testing.TB, passphrase string) (*Engine, *countingCLI) {
	t.Helper()
	c := &countingCLI{}
	e, err := New(context.Background(), WithDir(t.TempDir()), WithPulumiHome(t.TempDir()), WithResolver(pulumiOnlyResolver(t)),
		WithPassphrase(passphrase), WithRunHistory(false), withCommand(c))
	require.NoError(t, err)
	return e, c
}

func configProgram(stack string, config map[string]ConfigValue) Program {
	return Program{Project: "cfg", Stack: stack, Config: config, Run: func(*pulumi.Context) error { return nil }}
}

// TestOpen_ConfigIsWrittenOnlyWhenItWouldChange: reopening a stack with
// the configuration Slipway wrote last runs no `config set`; a changed
// value, or a settings file changed by anyone else, is written again.
func TestOpen_ConfigIsWrittenOnlyWhenItWouldChange(t *testing.T) {
	ctx := context.Background()
	e, cli := countingEngine(t, "")
	cfg := map[string]ConfigValue{"greeting": {Value: "hi"}, "token": {Value: "s3cr3t", Secret: true}}
	st, err := e.UpsertStack(ctx, configProgram("dev", cfg))
	require.NoError(t, err)
	assert.Empty(t, cli.argsWith("s3cr3t"), "a secret value is never a process argument (/proc/<pid>/cmdline)")
	assert.Equal(t, 2, cli.count("config set"), "a new stack gets its configuration: set-all of the plain values, set --secret reading the secret on stdin")
	settings := filepath.Join(e.Dir(), "workspaces", "cfg", "dev", "Pulumi.dev.yaml")
	before, err := os.ReadFile(settings)
	require.NoError(t, err)
	assert.NotContains(t, string(before), "s3cr3t", "the secret is encrypted in the settings file")
	assert.FileExists(t, filepath.Join(filepath.Dir(settings), engine.ConfigMarkerFile),
		"with an empty passphrase the settings file discloses the secret anyway, so its marker may stay on disk")

	_, err = e.UpsertStack(ctx, configProgram("dev", cfg))
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("config set"), "the same configuration again changes nothing")
	after, err := os.ReadFile(settings)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))

	changed := map[string]ConfigValue{"greeting": {Value: "hello"}, "token": {Value: "s3cr3t", Secret: true}}
	st, err = e.UpsertStack(ctx, configProgram("dev", changed))
	require.NoError(t, err)
	assert.Equal(t, 2, cli.count("config set"), "a changed value is written")
	got, err := st.Auto().GetAllConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello", got["cfg:greeting"].Value)

	// Someone else (pulumi config set, another tool) changes the file.
	require.NoError(t, st.Auto().SetConfig(ctx, "greeting", auto.ConfigValue{Value: "tampered"}))
	cli.count("")
	st, err = e.UpsertStack(ctx, configProgram("dev", changed))
	require.NoError(t, err)
	assert.Equal(t, 2, cli.count("config set"), "a settings file Slipway did not leave is written again")
	got, err = st.Auto().GetAllConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello", got["cfg:greeting"].Value)
	assert.Equal(t, "s3cr3t", got["cfg:token"].Value)
	assert.True(t, got["cfg:token"].Secret)

	// A secret that changes is written, though its ciphertext is all the file shows.
	_, err = e.UpsertStack(ctx, configProgram("dev", map[string]ConfigValue{"greeting": {Value: "hello"}, "token": {Value: "other-value", Secret: true}}))
	require.NoError(t, err)
	assert.Empty(t, cli.argsWith("other-value"))
	assert.Equal(t, 2, cli.count("config set"))
	got, err = st.Auto().GetAllConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "other-value", got["cfg:token"].Value)
}

// TestOpen_SecretConfigMarkerStaysInMemoryWithAPassphrase: with a real
// passphrase, nothing derived from a secret value is written to disk; the
// engine that wrote the configuration skips the next write, a new engine
// (another process) writes once.
func TestOpen_SecretConfigMarkerStaysInMemoryWithAPassphrase(t *testing.T) {
	ctx := context.Background()
	e, cli := countingEngine(t, "correct horse battery staple")
	cfg := map[string]ConfigValue{"token": {Value: "s3cr3t", Secret: true}}
	_, err := e.UpsertStack(ctx, configProgram("dev", cfg))
	require.NoError(t, err)
	assert.Empty(t, cli.argsWith("s3cr3t"))
	assert.Equal(t, 1, cli.count("config set --stack"), "only a secret: one `config set --secret`, no set-all")
	wd := filepath.Join(e.Dir(), "workspaces", "cfg", "dev")
	assert.NoFileExists(t, filepath.Join(wd, engine.ConfigMarkerFile), "no digest of a secret on disk")
	_, err = e.UpsertStack(ctx, configProgram("dev", cfg))
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("config set"), "the same engine remembers its write")

	cli2 := &countingCLI{}
	e2, err := New(ctx, WithDir(e.Dir()), WithPulumiHome(e.e.PulumiHome()), WithResolver(pulumiOnlyResolver(t)),
		WithPassphrase("correct horse battery staple"), WithRunHistory(false), withCommand(cli2))
	require.NoError(t, err)
	_, err = e2.UpsertStack(ctx, configProgram("dev", cfg))
	require.NoError(t, err)
	assert.Equal(t, 1, cli2.count("config set"), "another engine cannot know, so it writes")
}

// TestSelectStack_UnknownIsRefusedWithoutAndKnownSelectedWithoutTheCLI:
// a stack whose checkpoint the backend holds is opened without `pulumi
// stack select`; an unknown one is still refused, and never created.
func TestSelectStack_UnknownIsRefusedWithoutAndKnownSelectedWithoutTheCLI(t *testing.T) {
	ctx := context.Background()
	e, cli := countingEngine(t, "")
	prog := configProgram("dev", nil)
	_, err := e.SelectStack(ctx, prog)
	require.Error(t, err)
	assert.True(t, IsUnknownStack(err), "%v", err)
	_, err = e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	cli.count("")
	st, err := e.SelectStack(ctx, prog)
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("stack select"), "a stack the backend holds needs no CLI to be selected")
	_, err = st.Up(ctx)
	require.NoError(t, err, "operations name their stack")
	require.NoError(t, st.Auto().Workspace().RemoveStack(ctx, "dev"))
	_, err = e.SelectStack(ctx, prog)
	require.Error(t, err)
	assert.True(t, IsUnknownStack(err), "a removed stack is unknown again: %v", err)
	known, err := e.Stacks(ctx, "cfg")
	require.NoError(t, err)
	assert.Empty(t, known, "refusing created nothing")
}

// TestUp_PlainOutputsAreReadFromTheCheckpoint: after an up, outputs
// without secrets come from the checkpoint (no `stack output` process),
// exactly as the CLI prints them; a secret output goes to the CLI, which
// alone can decrypt it.
func TestUp_PlainOutputsAreReadFromTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	e, cli := countingEngine(t, "")
	plain := Program{Project: "outs", Stack: "dev", Run: func(ctx *pulumi.Context) error {
		ctx.Export("name", pulumi.String("web"))
		ctx.Export("replicas", pulumi.Int(3))
		ctx.Export("ports", pulumi.IntArray{pulumi.Int(80), pulumi.Int(443)})
		ctx.Export("labels", pulumi.StringMap{"app": pulumi.String("web")})
		return nil
	}}
	st, err := e.UpsertStack(ctx, plain)
	require.NoError(t, err)
	cli.count("")
	res, err := st.Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, cli.count("stack output"), "plain outputs need no CLI")
	assert.Equal(t, map[string]any{"name": "web", "replicas": float64(3), "ports": []any{float64(80), float64(443)},
		"labels": map[string]any{"app": "web"}}, res.Outputs)

	secret := plain
	secret.Stack = "sec"
	secret.Run = func(ctx *pulumi.Context) error {
		ctx.Export("name", pulumi.String("web"))
		ctx.Export("token", pulumi.ToSecret(pulumi.String("s3cr3t")))
		return nil
	}
	st, err = e.UpsertStack(ctx, secret)
	require.NoError(t, err)
	cli.count("")
	res, err = st.Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, cli.count("stack output"), "a secret output is read by the CLI")
	assert.Equal(t, map[string]any{"name": "web", "token": "[secret]"}, res.Outputs)
	outs, err := st.Auto().Outputs(ctx)
	require.NoError(t, err)
	assert.Equal(t, auto.OutputValue{Value: "s3cr3t", Secret: true}, outs["token"])
}

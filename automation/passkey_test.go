package automation

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/slipwayhq/slipway/automation/internal/passkey"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// TestPassphraseKey_EngineRunsUseTheEnginesKey: every engine run of a
// stack (preview, up, refresh, destroy) opens its secrets with the key the
// Engine derived and handed it, not one the process environment carries.
// The environment is given a key bound to the stack's salt and the Engine's
// passphrase but not the stack's key: the CLI on its own takes it and
// refuses it as an incorrect passphrase (so the patch is live and checks
// what it is given), while the Engine's runs, whose entry comes last, read
// the secret configuration value and succeed.
func TestPassphraseKey_EngineRunsUseTheEnginesKey(t *testing.T) {
	ctx := context.Background()
	const phrase = "correct horse"
	e, cli := countingEngine(t, phrase)
	require.True(t, e.Pulumi().Patched, "the test needs Slipway's pulumi build")
	prog := Program{Project: "pk", Stack: "dev", Config: map[string]ConfigValue{"token": {Value: "s3cr3t", Secret: true}},
		Run: func(ctx *pulumi.Context) error {
			ok := config.RequireSecret(ctx, "token").ApplyT(func(v string) bool { return v == "s3cr3t" })
			ctx.Export("tokenRead", pulumi.Unsecret(ok))
			return nil
		}}
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)

	wd := filepath.Join(e.Dir(), "workspaces", "pk", "dev")
	b, err := os.ReadFile(filepath.Join(wd, "Pulumi.dev.yaml"))
	require.NoError(t, err)
	var settings struct {
		Salt string `yaml:"encryptionsalt"`
	}
	require.NoError(t, yaml.Unmarshal(b, &settings))
	salt, err := base64.StdEncoding.DecodeString(strings.Split(settings.Salt, ":")[1])
	require.NoError(t, err)
	wrong := make([]byte, 32)
	poisoned := passkey.Entry(phrase, salt, wrong)
	t.Setenv(toolchain.PassphraseKeyEnv, strings.TrimPrefix(poisoned, toolchain.PassphraseKeyEnv+"="))

	env := os.Environ() // holds the wrong key
	for k, v := range e.e.Env() {
		env = append(env, k+"="+v)
	}
	env = append(env, "PULUMI_HOME="+e.e.PulumiHome())
	configGet := func(env []string) (string, error) {
		cmd := exec.CommandContext(ctx, e.Pulumi().Bin(), "config", "get", "token", "--stack", "dev", "--non-interactive")
		cmd.Dir, cmd.Env = wd, env
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := configGet(env)
	require.Error(t, err, "the CLI alone must refuse the wrong key: %s", out)
	assert.Contains(t, out, "incorrect passphrase")
	out, err = configGet(append(env, toolchain.PassphraseKeyEnv+"="))
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "s3cr3t", out, "without the variable the CLI derives the key from the passphrase")

	cli.count("")
	pre, err := st.Preview(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"create": 1}, pre.Summary)
	up, err := st.Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, true, up.Outputs["tokenRead"], "the program read the secret the engine decrypted")
	_, err = st.Refresh(ctx)
	require.NoError(t, err)
	_, err = st.Destroy(ctx)
	require.NoError(t, err)
	assert.Empty(t, cli.argsWith(toolchain.PassphraseKeyEnv), "the key never reaches a process's arguments")
	assert.Equal(t, 1, cli.count("preview"))
}

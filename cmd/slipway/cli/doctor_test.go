package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/stacks/web"
)

// TestDoctor_FailingChecksNameTheirFix: on a machine with nothing set up
// (no pulumi on PATH, an empty toolchain cache, no kubeconfig, a backend
// that is a file, a shared backend without passphrase, a binary that does
// not serve the analyzer, a --plugin that is not executable) doctor prints
// one line per check, each failing line names its fix, and it exits 1;
// --json gives one failed item per failing check.
func TestDoctor_FailingChecksNameTheirFix(t *testing.T) {
	tmp := t.TempDir()
	notADir := filepath.Join(tmp, "state")
	require.NoError(t, os.WriteFile(notADir, []byte("x"), 0o644))
	t.Setenv("PATH", t.TempDir())
	t.Setenv("KUBECONFIG", filepath.Join(tmp, "no-such-kubeconfig"))
	t.Setenv("HOME", tmp)
	t.Setenv("PULUMI_HOME", filepath.Join(tmp, "pulumi-home"))
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "")
	os.Unsetenv("PULUMI_CONFIG_PASSPHRASE")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	os.Unsetenv("KUBERNETES_SERVICE_HOST")
	opts := []Option{Definitions(web.Definition)}
	args := []string{"--cache-dir", filepath.Join(tmp, "cache"), "--backend", "file://" + notADir,
		"--plugin", "aws=" + notADir, "doctor"}

	r := run(t, opts, args...)
	require.Equal(t, ExitError, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	byName := map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 3, "line %q", l)
		byName[f[1]] = l
	}
	assert.Len(t, lines, 6, "one line per check:\n%s", r.stdout)
	for name, want := range map[string]string{
		"toolchain": "toolchain build",
		"backend":   "point --backend at a directory",
		"target":    "cluster up",
		"analyzer":  "ServeIfAnalyzer() first thing in main",
		"plugins":   "give --plugin NAME[@VERSION]=PATH",
	} {
		l, ok := byName[name]
		require.True(t, ok, "no %s line in:\n%s", name, r.stdout)
		assert.True(t, strings.HasPrefix(l, "FAIL "), l)
		assert.Contains(t, l, "; fix: ")
		assert.Contains(t, l, want)
	}
	assert.True(t, strings.HasPrefix(byName["passphrase"], "warn "), "a local file backend only warns: %s", byName["passphrase"])
	assert.Contains(t, r.stderr, "5 of 6 check(s) failed")

	// A shared backend without a passphrase fails that check, naming the variable.
	r = run(t, opts, "--backend", "https://api.pulumi.example", "doctor")
	require.Equal(t, ExitError, r.code)
	assert.Regexp(t, `(?m)^FAIL passphrase .*runs refuse a shared backend.*; fix: set PULUMI_CONFIG_PASSPHRASE$`, r.stdout)

	r = run(t, opts, append([]string{"--json"}, args...)...)
	require.Equal(t, ExitError, r.code)
	env := validEnvelope(t, r)
	failed := 0
	for _, it := range env["results"].([]any) {
		m := it.(map[string]any)
		assert.True(t, strings.HasPrefix(m["operation"].(string), "doctor "))
		if m["status"] == "failed" {
			failed++
			assert.Contains(t, m["error"].(map[string]any)["message"], "; fix: ")
		}
	}
	assert.Equal(t, 5, failed)
	b, err := json.Marshal(env)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "PULUMI_CONFIG_PASSPHRASE=")
}

package automation

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNew_HonoursThePulumiCLIsConventions: PULUMI_BACKEND_URL,
// PULUMI_SECRETS_PROVIDER and PULUMI_CONFIG_PASSPHRASE_FILE apply as they do
// for the pulumi CLI, and the options win over them. (Before, the backend
// was always <dir>/state, so a CI job that set PULUMI_BACKEND_URL wrote its
// state to the runner's disk.)
func TestNew_HonoursThePulumiCLIsConventions(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	pass := filepath.Join(t.TempDir(), "passphrase")
	require.NoError(t, os.WriteFile(pass, []byte("from-the-file\n"), 0o600))
	t.Setenv("PULUMI_BACKEND_URL", "file://"+state)
	t.Setenv("PULUMI_SECRETS_PROVIDER", "passphrase")
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "") // restored after the test
	require.NoError(t, os.Unsetenv("PULUMI_CONFIG_PASSPHRASE"))
	t.Setenv("PULUMI_CONFIG_PASSPHRASE_FILE", pass)

	dir := t.TempDir()
	e, err := New(ctx, WithDir(dir))
	require.NoError(t, err)
	assert.Equal(t, "file://"+state, e.Backend(), "$PULUMI_BACKEND_URL")
	assert.Equal(t, "from-the-file", e.e.Env()["PULUMI_CONFIG_PASSPHRASE"], "$PULUMI_CONFIG_PASSPHRASE_FILE, trimmed as pulumi reads it")
	assert.Equal(t, "passphrase", e.e.SecretsProvider())
	_, err = os.Stat(filepath.Join(dir, "state"))
	assert.True(t, os.IsNotExist(err), "no state directory of its own when the backend is elsewhere")

	other := t.TempDir()
	e, err = New(ctx, WithDir(dir), WithBackend("file://"+other), WithPassphrase("given"))
	require.NoError(t, err)
	assert.Equal(t, "file://"+other, e.Backend(), "WithBackend wins")
	assert.Equal(t, "given", e.e.Env()["PULUMI_CONFIG_PASSPHRASE"], "WithPassphrase wins")

	t.Setenv("PULUMI_CONFIG_PASSPHRASE_FILE", filepath.Join(t.TempDir(), "missing"))
	_, err = New(ctx, WithDir(dir))
	assert.ErrorContains(t, err, "PULUMI_CONFIG_PASSPHRASE_FILE")

}

// TestNew_ABackendWithoutRecordsIsRefusedUnlessAccepted: on gs://, azblob://
// or Pulumi Cloud, Slipway's records (release history, runs, approvals)
// would live only on this machine; New refuses, naming what is lost and
// WithLocalRecords, which accepts it.
func TestNew_ABackendWithoutRecordsIsRefusedUnlessAccepted(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{"gs://bucket", "azblob://container", "https://api.pulumi.com"} {
		_, err := New(ctx, WithDir(t.TempDir()), WithBackend(url), WithPassphrase("p"))
		var re *RecordsError
		require.ErrorAs(t, err, &re, url)
		assert.Equal(t, url, re.Backend)
		for _, want := range []string{"release history", "approval", "WithLocalRecords (--local-records)"} {
			assert.Contains(t, err.Error(), want, url)
		}
		e, err := New(ctx, WithDir(t.TempDir()), WithBackend(url), WithPassphrase("p"), WithLocalRecords())
		require.NoError(t, err, url)
		assert.Equal(t, url, e.Backend())
	}
}

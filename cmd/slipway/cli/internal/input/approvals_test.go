package input

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// writeKeys writes an Ed25519 key pair as PEM files (what openssl
// genpkey and pkey -pubout write) and returns their paths.
func writeKeys(t *testing.T) (private, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	dir := t.TempDir()
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	pk, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	private, public = filepath.Join(dir, "approval-key.pem"), filepath.Join(dir, "approval-key.pub")
	require.NoError(t, os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600))
	require.NoError(t, os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644))
	return private, public
}

// TestApprovalFlags_RefuseWhatWouldLetAnyoneApprove: serve refuses, naming
// the flag, every configuration that would accept decisions without the
// signing key, Slack callbacks without a workspace or approvers, a shared
// token, or a token on the command line (never echoing it).
func TestApprovalFlags_RefuseWhatWouldLetAnyoneApprove(t *testing.T) {
	t.Setenv(envApprovalKeyFile, "")
	t.Setenv(envLegacyServeToken, "")
	priv, pub := writeKeys(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "alice")
	require.NoError(t, os.WriteFile(tok, []byte("alice-token-0123456789\n"), 0o600))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("short"), 0o600))
	slack := []byte("slack-signing-secret")
	ok := ApprovalFlags{keyFile: priv, slackTeam: "T123", slackApprovers: []string{"U123"}, apiTokens: []string{"alice=@" + tok}}
	for name, c := range map[string]struct {
		f     func(f *ApprovalFlags)
		slack []byte
		want  string
	}{
		"a token without the signing key":  {func(f *ApprovalFlags) { f.keyFile, f.slackTeam, f.slackApprovers = "", "", nil }, nil, "--approval-key-file is required"},
		"Slack without the signing key":    {func(f *ApprovalFlags) { f.keyFile, f.apiTokens = "", nil }, slack, "--approval-key-file is required"},
		"a public key as the signing key":  {func(f *ApprovalFlags) { f.keyFile = pub }, slack, "--approval-key-file"},
		"a missing key file":               {func(f *ApprovalFlags) { f.keyFile = "/nonexistent/key" }, slack, `--approval-key-file "/nonexistent/key" is not a readable file`},
		"Slack without a workspace":        {func(f *ApprovalFlags) { f.slackTeam = "" }, slack, "--slack-team-id"},
		"Slack with a malformed workspace": {func(f *ApprovalFlags) { f.slackTeam = "acme" }, slack, `--slack-team-id "acme"`},
		"Slack without approvers":          {func(f *ApprovalFlags) { f.slackApprovers = nil }, slack, "--slack-approvers"},
		"a malformed approver":             {func(f *ApprovalFlags) { f.slackApprovers = []string{"alice"} }, slack, `--slack-approvers "alice" is not a Slack user ID`},
		"a group without a bot token":      {func(f *ApprovalFlags) { f.slackGroup = "S123" }, slack, "--slack-bot-token-file"},
		"a malformed group":                {func(f *ApprovalFlags) { f.slackGroup = "admins" }, slack, `--slack-approver-group "admins"`},
		"Slack flags without Slack":        {func(f *ApprovalFlags) {}, nil, "--slack-signing-secret-file"},
		"the shared --token-file":          {func(f *ApprovalFlags) { f.tokenFile = tok }, slack, "--api-token NAME=@PATH"},
		"a token on the command line":      {func(f *ApprovalFlags) { f.apiTokens = []string{"alice=alice-token-0123456789"} }, slack, `--api-token "alice=…" is not NAME=@PATH`},
		"a token file missing":             {func(f *ApprovalFlags) { f.apiTokens = []string{"alice=@/nonexistent/t"} }, slack, `--api-token alice "/nonexistent/t" is not a readable file`},
		"a short token":                    {func(f *ApprovalFlags) { f.apiTokens = []string{"bob=@" + short} }, slack, "--api-token: the token of bob is shorter than 16 bytes"},
		"two names, one token":             {func(f *ApprovalFlags) { f.apiTokens = append(f.apiTokens, "bob=@"+tok) }, slack, "alice and bob have the same token"},
	} {
		f := ok
		c.f(&f)
		_, err := f.Build(c.slack)
		require.Error(t, err, name)
		var ie *app.InputError
		assert.True(t, errors.As(err, &ie), "%s: bad input", name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), "alice-token-0123456789", "%s: the token is never echoed", name)
	}

	t.Setenv(envLegacyServeToken, "shared-token-0123456789")
	_, err := ok.Build(slack)
	require.Error(t, err)
	assert.Contains(t, err.Error(), envLegacyServeToken)
	t.Setenv(envLegacyServeToken, "")

	got, err := ok.Build(slack)
	require.NoError(t, err)
	assert.Equal(t, 1, got.Tokens.Len())
	assert.Len(t, got.Key, ed25519.PrivateKeySize)
	assert.NotEmpty(t, got.Slack)

	// Only a read-only dashboard runs without the key.
	got, err = ApprovalFlags{}.Build(nil)
	require.NoError(t, err)
	assert.False(t, got.deciding)
	assert.Nil(t, got.Key)
}

// TestApprovalPublicKey_RequiredAndNeverThePrivateKey: a waiting
// promotion needs serve's public key, named by its flag, and refuses the
// private key.
func TestApprovalPublicKey_RequiredAndNeverThePrivateKey(t *testing.T) {
	t.Setenv(EnvApprovalPublicKeyFile, "")
	priv, pub := writeKeys(t)
	_, err := ApprovalPublicKey("")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--approval-wait needs --approval-public-key-file")
	_, err = ApprovalPublicKey(priv)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds a private key")
	k, err := ApprovalPublicKey(pub)
	require.NoError(t, err)
	assert.Len(t, k, ed25519.PublicKeySize)
	t.Setenv(EnvApprovalPublicKeyFile, pub)
	_, err = ApprovalPublicKey("")
	require.NoError(t, err, "the variable names the file")
}

func TestRequesters_FlagEnvironmentCIActor(t *testing.T) {
	env := map[string]string{EnvRequestedBy: "U777, carol", "GITHUB_ACTOR": "octocat"}
	got := Requesters([]string{"ci-bot", "Carol"}, func(k string) string { return env[k] })
	require.GreaterOrEqual(t, len(got), 4)
	assert.Equal(t, []string{"ci-bot", "Carol", "U777", "octocat"}, got[:4], "in order, without repeats (case-insensitive)")
}

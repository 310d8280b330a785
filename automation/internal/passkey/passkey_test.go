package passkey

import (
	"context"
	"encoding/base64"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// state makes a passphrase provider's encryption state as the pulumi CLI
// makes it (NewPassphraseSecretsManager): the salt and "pulumi" encrypted
// under the key.
func state(t *testing.T, phrase string, salt []byte) string {
	t.Helper()
	msg, err := config.NewSymmetricCrypterFromPassphrase(phrase, salt).EncryptValue(context.Background(), "pulumi")
	require.NoError(t, err)
	return "v1:" + base64.StdEncoding.EncodeToString(salt) + ":" + msg
}

// TestDerive_TheCLIsKeyCheckedAsTheCLIChecksIt: the key opens what the
// pulumi SDK's crypter encrypts with the passphrase; a wrong passphrase and
// a malformed state are refused.
func TestDerive_TheCLIsKeyCheckedAsTheCLIChecksIt(t *testing.T) {
	ctx := context.Background()
	salt := []byte("8bytesal")
	st := state(t, "phrase", salt)
	key, gotSalt, err := Derive("phrase", st)
	require.NoError(t, err)
	assert.Equal(t, salt, gotSalt)
	secret, err := config.NewSymmetricCrypterFromPassphrase("phrase", salt).EncryptValue(ctx, "s3cr3t")
	require.NoError(t, err)
	plain, err := config.NewSymmetricCrypter(key).DecryptValue(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, "s3cr3t", plain)

	_, _, err = Derive("wrong", st)
	assert.ErrorIs(t, err, ErrIncorrectPassphrase)
	for _, bad := range []string{"", "v2:" + st[3:], "v1:!!:" + st[strings.LastIndex(st, "v1:"):], "v1:" + base64.StdEncoding.EncodeToString(salt)} {
		_, _, err := Derive("phrase", bad)
		assert.ErrorContains(t, err, "malformed", "state %q", bad)
	}
}

// TestCache_DerivesOncePerPassphraseAndStack: concurrent and later requests
// for one stack share one derivation; another stack or passphrase derives
// its own; a failed derivation gives no entry.
func TestCache_DerivesOncePerPassphraseAndStack(t *testing.T) {
	var n atomic.Int32
	real := derive
	derive = func(phrase, state string) ([]byte, []byte, error) { n.Add(1); return real(phrase, state) }
	t.Cleanup(func() { derive = real })

	a, b := state(t, "phrase", []byte("salt-a01")), state(t, "phrase", []byte("salt-b01"))
	var c Cache
	var wg sync.WaitGroup
	entries := make([]string, 4)
	for i := range entries {
		wg.Go(func() {
			var err error
			entries[i], err = c.Entry("phrase", a)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, n.Load(), "one derivation for one stack")
	for _, e := range entries {
		assert.Equal(t, entries[0], e)
	}
	key, salt, err := Derive("phrase", a)
	require.NoError(t, err)
	assert.Equal(t, Entry("phrase", salt, key), entries[0])
	assert.True(t, strings.HasPrefix(entries[0], "SLIPWAY_PASSPHRASE_KEY=v1:"+base64.StdEncoding.EncodeToString(salt)+":"))

	_, err = c.Entry("phrase", b)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n.Load(), "another stack derives its own")
	_, err = c.Entry("wrong", a)
	assert.ErrorIs(t, err, ErrIncorrectPassphrase)
	assert.EqualValues(t, 3, n.Load())
	_, err = c.Entry("phrase", a)
	require.NoError(t, err)
	assert.EqualValues(t, 3, n.Load(), "the first stack's key is kept")
}

type recordingCLI struct {
	auto.PulumiCommand
	env  []string
	args []string
}

func (r *recordingCLI) Run(_ context.Context, _ string, _ io.Reader, _, _ []io.Writer, env []string, args ...string) (string, string, int, error) {
	r.env, r.args = env, args
	return "", "", 0, nil
}

// TestCommand_EngineRunsGetTheirStacksKey: preview, up, refresh, destroy
// and import get the entry of the stack they name; other commands, and a
// stack without an entry, run with the environment they were given, which
// is never changed in place.
func TestCommand_EngineRunsGetTheirStacksKey(t *testing.T) {
	ctx := context.Background()
	rec := &recordingCLI{}
	var asked []string
	c := Command{PulumiCommand: rec, Key: func(stack string) (string, bool) {
		asked = append(asked, stack)
		return "SLIPWAY_PASSPHRASE_KEY=k-" + stack, stack != "none"
	}}
	given := make([]string, 1, 4)
	given[0] = "PULUMI_CONFIG_PASSPHRASE=p"
	for _, args := range [][]string{
		{"preview", "--json", "--stack", "dev"},
		{"up", "--yes", "--stack", "org/proj/dev", "--", "x"},
		{"refresh", "--stack=dev"},
		{"destroy", "-s", "dev"},
		{"import", "--stack", "dev"},
	} {
		_, _, _, err := c.Run(ctx, "", nil, nil, nil, given, args...)
		require.NoError(t, err)
		assert.Equal(t, args, rec.args)
		require.Len(t, rec.env, 2, "%v", args)
		assert.Equal(t, "SLIPWAY_PASSPHRASE_KEY=k-"+asked[len(asked)-1], rec.env[1])
	}
	assert.Equal(t, []string{"dev", "org/proj/dev", "dev", "dev", "dev"}, asked)
	assert.Empty(t, given[:2][1], "the entry is not written into the caller's slice")

	asked = nil
	for _, args := range [][]string{
		{"stack", "history", "--stack", "dev"},
		{"config", "set-all", "--stack", "dev"},
		{"preview", "--json"},
		{"version"},
		{},
	} {
		_, _, _, err := c.Run(ctx, "", nil, nil, nil, given, args...)
		require.NoError(t, err)
		assert.Equal(t, given, rec.env, "%v", args)
	}
	assert.Empty(t, asked, "no key is derived for what is not an engine run")
	_, _, _, err := c.Run(ctx, "", nil, nil, nil, given, "preview", "--stack", "none")
	require.NoError(t, err)
	assert.Equal(t, given, rec.env, "no entry, nothing added")
}

// TestState_OnlyWhenThePassphraseProviderKeepsTheSecrets reads the
// encryption state from settings files as the CLI writes them.
func TestState_OnlyWhenThePassphraseProviderKeepsTheSecrets(t *testing.T) {
	const salt = "v1:LABuzZqvqJ8=:v1:MW5bZ2SYPglER6EA:GV6+zTVueqc0dr2Xu4dambRncv6Ysg=="
	for settings, want := range map[string]string{
		"encryptionsalt: " + salt + "\nconfig:\n  pk:a: b\n":                salt,
		"secretsprovider: passphrase\nencryptionsalt: " + salt + "\n":       salt,
		"secretsprovider: awskms://alias/x\nencryptionsalt: " + salt + "\n": "",
		"secretsprovider: awskms://alias/x\nencryptedkey: abc\n":            "",
		"encryptionsalt: " + salt + "\nencryptedkey: abc\n":                 "",
		"config:\n  pk:a: b\n":              "",
		"encryptionsalt: [not, a, string\n": "",
	} {
		assert.Equal(t, want, State([]byte(settings)), "%q", settings)
	}
}

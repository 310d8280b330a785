package toolchain

import "github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"

// PassphraseKeyEnv names the variable through which Slipway hands its pulumi
// build the key it derived from the passphrase and a stack's salt (see
// passphraseKeyPatch and slipway automation/internal/passkey).
const PassphraseKeyEnv = "SLIPWAY_PASSPHRASE_KEY"

// passphraseKeyPatch lets the pulumi CLI take the passphrase provider's key
// from the process that runs it instead of deriving it. Every pulumi
// process that opens a stack whose secrets the passphrase provider keeps
// derives the key (PBKDF2-SHA256, 1,000,000 iterations: ≈ 240 ms of CPU on
// this machine, before anything else the operation does), whether or not the
// stack holds a secret; an Engine that runs several operations on a stack
// derives it once and passes it on (SLIPWAY_PASSPHRASE_KEY).
//
// The variable is "v1:<salt>:<key>:<mac>" (standard base64), mac being
// HMAC-SHA256 of the passphrase under the key. The CLI uses the key only
// where it opens an existing stack's secrets (the passphrase manager's
// symmetricCrypterFromPhraseAndState), only for that salt and the
// passphrase it was given; any other value is ignored and the key derived
// as upstream derives it. What upstream checks next is unchanged: the
// stack's encrypted message must decrypt under the key, or the passphrase
// is incorrect (ErrIncorrectPassphrase), so a wrong key is refused as a
// wrong passphrase is. The patch is in pkg's passphrase package, which
// only the CLI's own packages import, not in the SDK's config package,
// which most of what the CLI shares with the slipway command imports: the
// Go build cache still serves those to both.
var passphraseKeyPatch = gobuild.Patch{
	Name:   "passphrase-key",
	Module: "github.com/pulumi/pulumi/pkg/v3",
	File:   "secrets/passphrase/manager.go",
	Old:    "\tdecrypter := config.NewSymmetricCrypterFromPassphrase(phrase, salt)\n",
	New: "\t// Slipway: the key its Engine derived for this passphrase and salt, if given.\n" +
		"\tdecrypter := slipwayCrypter(phrase, salt)\n",
	Add:   map[string]string{"slipway_passphrase_key.go": passphraseKeySource},
	Tests: map[string]string{"slipway_passphrase_key_test.go": passphraseKeyTest},
}

const passphraseKeySource = `package passphrase

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
)

// slipwayCrypter is the crypter of the key SLIPWAY_PASSPHRASE_KEY carries
// ("v1:<salt>:<key>:<mac>", mac = HMAC-SHA256(key, phrase)) when it is for
// salt and phrase; otherwise the key is derived from phrase and salt.
func slipwayCrypter(phrase string, salt []byte) config.Crypter {
	if v, ok := os.LookupEnv("` + PassphraseKeyEnv + `"); ok {
		parts := strings.Split(v, ":")
		if len(parts) == 4 && parts[0] == "v1" {
			s, err1 := base64.StdEncoding.DecodeString(parts[1])
			key, err2 := base64.StdEncoding.DecodeString(parts[2])
			mac, err3 := base64.StdEncoding.DecodeString(parts[3])
			if err1 == nil && err2 == nil && err3 == nil && len(key) == config.SymmetricCrypterKeyBytes && bytes.Equal(s, salt) {
				m := hmac.New(sha256.New, key)
				m.Write([]byte(phrase))
				if hmac.Equal(m.Sum(nil), mac) {
					return config.NewSymmetricCrypter(key)
				}
			}
		}
	}
	return config.NewSymmetricCrypterFromPassphrase(phrase, salt)
}
`

const passphraseKeyTest = `package passphrase

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/pbkdf2"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
)

func slipwayKeyEnv(salt, key []byte, phrase string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(phrase))
	b := base64.StdEncoding.EncodeToString
	return "v1:" + b(salt) + ":" + b(key) + ":" + b(m.Sum(nil))
}

// TestSlipwayPassphraseKey_UsedOnlyForItsSaltAndPassphraseAndChecked: a
// stack's secrets open with the key given for its salt and passphrase; a
// wrong key given so is refused as a wrong passphrase is; any other value
// leaves the key derived from the passphrase.
func TestSlipwayPassphraseKey_UsedOnlyForItsSaltAndPassphraseAndChecked(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SLIPWAY_PASSPHRASE_KEY", "")
	state, sm, err := NewPassphraseSecretsManager("phrase")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := sm.Encrypter().EncryptValue(ctx, "s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	salt, err := base64.StdEncoding.DecodeString(strings.SplitN(state, ":", 3)[1])
	if err != nil {
		t.Fatal(err)
	}
	key := pbkdf2.Key([]byte("phrase"), salt, 1000000, config.SymmetricCrypterKeyBytes, sha256.New)
	wrong := make([]byte, config.SymmetricCrypterKeyBytes)
	open := func(phrase, env string) (string, error) {
		clearCachedSecretsManagers()
		t.Setenv("SLIPWAY_PASSPHRASE_KEY", env)
		sm, err := GetPassphraseSecretsManager(phrase, state)
		if err != nil {
			return "", err
		}
		return sm.Decrypter().DecryptValue(ctx, secret)
	}

	if v, err := open("phrase", slipwayKeyEnv(salt, key, "phrase")); err != nil || v != "s3cr3t" {
		t.Errorf("the key given for the salt and passphrase: %q, %v", v, err)
	}
	if _, err := open("phrase", slipwayKeyEnv(salt, wrong, "phrase")); !errors.Is(err, ErrIncorrectPassphrase) {
		t.Errorf("a wrong key given for the salt and passphrase must be refused as a wrong passphrase is: %v", err)
	}
	// The stack's own key bound to another passphrase opens it: the key is
	// what opens the secrets, and whoever holds it can read them anyway.
	if v, err := open("other", slipwayKeyEnv(salt, key, "other")); err != nil || v != "s3cr3t" {
		t.Errorf("the stack's key given for the passphrase the process has: %q, %v", v, err)
	}
	if _, err := open("other", slipwayKeyEnv(salt, key, "phrase")); !errors.Is(err, ErrIncorrectPassphrase) {
		t.Errorf("a key given for another passphrase is ignored, and the wrong passphrase refused: %v", err)
	}
	for _, env := range []string{"", slipwayKeyEnv(salt, wrong, "other"), slipwayKeyEnv([]byte("othersalt"), wrong, "phrase"),
		"v2:" + slipwayKeyEnv(salt, wrong, "phrase")[3:], slipwayKeyEnv(salt, wrong[:16], "phrase"),
		slipwayKeyEnv(salt, wrong, "phrase") + "x", "v1:!:!:!"} {
		if v, err := open("phrase", env); err != nil || v != "s3cr3t" {
			t.Errorf("value %q must be ignored and the key derived from the passphrase: %q, %v", env, v, err)
		}
	}
}
`

// Package passkey derives the passphrase secrets provider's key once and
// hands it to Slipway's pulumi build.
//
// Every pulumi process that opens a stack whose secrets the passphrase
// provider keeps derives the stack's key from the passphrase and the salt
// in its settings (PBKDF2-SHA256, 1,000,000 iterations: ≈ 240 ms of CPU on a
// 2-core machine), whether or not the stack holds a secret. A Cache derives
// it once per passphrase and stack, checks it as the CLI does, and Command
// passes it to the engine runs of Slipway's build in the environment
// (toolchain.PassphraseKeyEnv), which uses it for that salt and passphrase
// only (see the toolchain's passphrase-key patch). The key is no more than
// the passphrase that already reaches the process the same way: never in
// its arguments, a log or a report.
package passkey

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"gopkg.in/yaml.v3"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// ErrIncorrectPassphrase reports a passphrase that does not open the
// stack's encrypted key.
var ErrIncorrectPassphrase = errors.New("passkey: incorrect passphrase")

// Derive returns the key that phrase gives the passphrase provider's
// encryption state (the stack settings' encryptionsalt,
// "v1:<salt>:v1:<nonce>:<ciphertext>") and its salt, checked as the pulumi
// CLI checks it: the state's message must decrypt to "pulumi".
func Derive(phrase, state string) (key, salt []byte, err error) {
	v, rest, ok := strings.Cut(state, ":")
	b64salt, msg, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || v != "v1" {
		return nil, nil, errors.New("passkey: malformed encryption state")
	}
	if salt, err = base64.StdEncoding.DecodeString(b64salt); err != nil {
		return nil, nil, errors.New("passkey: malformed encryption state")
	}
	if key, err = pbkdf2.Key(sha256.New, phrase, salt, 1_000_000, config.SymmetricCrypterKeyBytes); err != nil {
		return nil, nil, err
	}
	// The CLI's own crypter opens the message, as the CLI does.
	if plain, err := config.NewSymmetricCrypter(key).DecryptValue(context.Background(), msg); err != nil || plain != "pulumi" {
		return nil, nil, ErrIncorrectPassphrase
	}
	return key, salt, nil
}

// State returns the passphrase provider's encryption state (encryptionsalt)
// that a stack's YAML settings file holds when that provider keeps the
// stack's secrets (the file has the salt and names no other provider), or "".
func State(settings []byte) string {
	var v struct {
		SecretsProvider string `yaml:"secretsprovider"`
		EncryptedKey    string `yaml:"encryptedkey"`
		EncryptionSalt  string `yaml:"encryptionsalt"`
	}
	if err := yaml.Unmarshal(settings, &v); err != nil || v.EncryptedKey != "" || (v.SecretsProvider != "" && v.SecretsProvider != "passphrase") {
		return ""
	}
	return v.EncryptionSalt
}

// derive is Derive; tests count its calls.
var derive = Derive

// Entry returns the environment entry that hands key to Slipway's pulumi
// build for salt and phrase: "SLIPWAY_PASSPHRASE_KEY=v1:<salt>:<key>:<mac>",
// mac being HMAC-SHA256 of phrase under key.
func Entry(phrase string, salt, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(phrase))
	b := base64.StdEncoding.EncodeToString
	return toolchain.PassphraseKeyEnv + "=v1:" + b(salt) + ":" + b(key) + ":" + b(m.Sum(nil))
}

// Cache derives each stack's key once. Its zero value is ready to use.
type Cache struct {
	mu   sync.Mutex
	keys map[[sha256.Size]byte]*derived
}

type derived struct {
	once  sync.Once
	entry string
	err   error
}

// Entry returns the environment entry for phrase and state (see Entry),
// deriving the key the first time; concurrent callers for the same stack
// wait for one derivation.
func (c *Cache) Entry(phrase, state string) (string, error) {
	h := sha256.New()
	for _, s := range []string{phrase, state} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	id := [sha256.Size]byte(h.Sum(nil))
	c.mu.Lock()
	if c.keys == nil {
		c.keys = map[[sha256.Size]byte]*derived{}
	}
	d, ok := c.keys[id]
	if !ok {
		d = &derived{}
		c.keys[id] = d
	}
	c.mu.Unlock()
	d.once.Do(func() {
		key, salt, err := derive(phrase, state)
		if d.err = err; err == nil {
			d.entry = Entry(phrase, salt, key)
		}
	})
	return d.entry, d.err
}

// engineVerbs are the commands that open a stack's secrets manager on every
// run: the engine's operations.
var engineVerbs = []string{"preview", "up", "update", "refresh", "destroy", "import"}

// Command is a pulumi command whose engine runs get the entry Key returns
// for the stack they name (--stack); every other command runs as it is.
type Command struct {
	auto.PulumiCommand
	// Key returns the entry for a stack, or false when there is none to give.
	Key func(stack string) (string, bool)
}

// Run implements auto.PulumiCommand.
func (c Command) Run(ctx context.Context, workdir string, stdin io.Reader, out, errOut []io.Writer, env []string, args ...string) (string, string, int, error) {
	if stack, ok := engineRun(args); ok {
		if kv, ok := c.Key(stack); ok {
			env = append(slices.Clip(env), kv)
		}
	}
	return c.PulumiCommand.Run(ctx, workdir, stdin, out, errOut, env, args...)
}

// engineRun returns the stack an engine operation's arguments name.
func engineRun(args []string) (string, bool) {
	if len(args) == 0 || !slices.Contains(engineVerbs, args[0]) {
		return "", false
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if (a == "--stack" || a == "-s") && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--stack="); ok {
			return v, true
		}
	}
	return "", false
}

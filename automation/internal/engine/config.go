package engine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/slipwayhq/slipway/automation/internal/filelock"
	"github.com/slipwayhq/slipway/automation/internal/passkey"
	"github.com/slipwayhq/slipway/automation/mask"
)

// ConfigMarkerFile, in a stack's workspace, records Slipway's last write
// of the stack's configuration (see Engine.writeConfig).
const ConfigMarkerFile = ".slipway-config.json"

// configMarker is what a configuration write left: the digest of the
// configuration written and of the stack settings files after the write.
type configMarker struct {
	Settings string `json:"settings"`
	Config   string `json:"config"`
}

// configMarkers remembers, per workspace, the configuration writes whose
// marker must not be stored on disk (see Engine.writeConfig).
type configMarkers struct {
	mu  sync.Mutex
	key []byte
	by  map[string]configMarker
}

// writeConfig writes the program's configuration to its stack, with `pulumi
// config set-all`, unless the stack's settings file (Pulumi.<stack>.yaml in
// the workspace, where a DIY stack keeps its configuration) is still
// byte for byte what Slipway's last write of the same configuration left:
// then the write would change nothing, and its CLI process (which derives
// the passphrase's key to encrypt the secrets again) is skipped. Any other
// change of the file, by any process, makes the next open write again.
//
// The marker of the last write lives beside the file when it gives nothing
// away: a configuration without secret values, or secrets of the
// passphrase provider with an empty passphrase, which the file itself
// discloses. Otherwise a digest of secret values on disk would let anyone
// who reads it test guesses without the passphrase or KMS key, so the
// marker stays in this Engine's memory, keyed with a random key: a
// long-lived Engine (fleet runner, serve, Each) skips, a new process
// writes once.
func (e *Engine) WriteConfig(ctx context.Context, s auto.Stack, p Program, wd string) error {
	if len(p.Config) == 0 {
		return nil
	}
	if slices.ContainsFunc(slices.Collect(maps.Values(p.Config)), func(v ConfigValue) bool { return v.Secret }) {
		e.warnWeakSecrets(ctx, p)
	}
	// Configuration writes to one workspace, and the markers they leave,
	// do not interleave between processes.
	unlock, err := filelock.Lock(ctx, filepath.Join(wd, ".slipway-config.lock"), 0o600, 50*time.Millisecond, nil)
	if err != nil {
		return fmt.Errorf("automation: configuration of %s: %w", p.Stack, err)
	}
	defer unlock()
	before, err := readSettings(wd, p.Stack)
	if err == nil {
		durable := e.configDurable(p, before)
		if m, ok := e.lastConfigWrite(wd, durable); ok && m.Config == e.configDigest(p, durable) && m.Settings == before.digest {
			return nil
		}
	}
	// A marker that no longer holds is removed before the write: a write
	// that fails or is killed halfway leaves no marker that could match.
	e.forgetConfigWrite(wd)
	plain := auto.ConfigMap{}
	for k, v := range p.Config {
		if !v.Secret {
			plain[k] = auto.ConfigValue{Value: v.Value}
		}
	}
	if len(plain) > 0 {
		if err := s.SetAllConfig(ctx, plain); err != nil {
			return fmt.Errorf("automation: writing config of %s/%s: %w", p.Project, p.Stack, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Config)) {
		if v := p.Config[k]; v.Secret {
			if err := e.setSecretConfig(ctx, s, k, v.Value); err != nil {
				return fmt.Errorf("automation: writing config of %s/%s: %w", p.Project, p.Stack, err)
			}
		}
	}
	after, err := readSettings(wd, p.Stack)
	if err != nil {
		return nil // the next open writes again
	}
	durable := e.configDurable(p, after)
	if err := e.rememberConfigWrite(wd, configMarker{Settings: after.digest, Config: e.configDigest(p, durable)}, durable); err != nil {
		e.log.WarnContext(ctx, "remembering the configuration write failed; the next open writes it again", "stack", p.Stack, "error", err)
	}
	return nil
}

// WeakSecretsWarning is the start of the warning an Engine logs (once) when
// it writes a secret into a file backend under an empty passphrase.
const WeakSecretsWarning = "secrets are encrypted with an empty passphrase"

// warnWeakSecrets logs, once per Engine, that p's secrets go into a file
// backend encrypted with an empty passphrase: anyone who can read the
// state directory can decrypt them.
func (e *Engine) warnWeakSecrets(ctx context.Context, p Program) {
	if e.passphrase != "" || e.secrets != "passphrase" || !strings.HasPrefix(e.backend, "file://") {
		return
	}
	e.weakSecrets.Do(func() {
		e.log.WarnContext(ctx, WeakSecretsWarning+" in the file backend: anyone who can read "+strings.TrimPrefix(e.backend, "file://")+
			" can decrypt them; set PULUMI_CONFIG_PASSPHRASE (or WithPassphrase) or use a KMS secrets provider (WithSecretsProvider)",
			"stack", p.Stack)
	})
}

// setSecretConfig writes one secret configuration value with `pulumi
// config set --secret KEY`, the value on the process's standard input: the
// Automation API's SetConfig and SetAllConfig put it in the process's
// arguments, which every local user can read in /proc/<pid>/cmdline (and
// `ps`). The CLI drops one trailing newline of what it reads.
func (e *Engine) setSecretConfig(ctx context.Context, s auto.Stack, key, value string) error {
	ws := s.Workspace()
	env := []string{"PULUMI_HOME=" + ws.PulumiHome()}
	for k, v := range ws.GetEnvVars() {
		env = append(env, k+"="+v)
	}
	_, stderr, code, err := e.cmd.Run(ctx, ws.WorkDir(), strings.NewReader(value), nil, nil, env,
		"config", "set", "--stack", s.Name(), "--secret", key)
	if err != nil {
		// The CLI never prints the value it read; mask it should it ever.
		return fmt.Errorf("setting secret %s (exit %d): %w: %s", key, code, err, mask.New(value).String(strings.TrimSpace(stderr)))
	}
	return nil
}

// configDurable reports whether the digest of p's configuration may be
// stored on disk: it has no secret value, or the stack's secrets are
// encrypted by the passphrase provider and this Engine's passphrase is
// empty, so the settings file discloses them anyway.
func (e *Engine) configDurable(p Program, st settings) bool {
	if e.passphrase == "" && st.salt != "" {
		return true
	}
	for _, v := range p.Config {
		if v.Secret {
			return false
		}
	}
	return true
}

// PassphraseKey returns the entry handing Slipway's pulumi build the key of
// stack's secrets in wd, derived once per Engine (package passkey), if any.
func (e *Engine) PassphraseKey(wd, stack string) (kv string, ok bool) {
	st, err := readSettings(wd, stack[strings.LastIndex(stack, "/")+1:]) // named by its last part
	if e.pulumi.Patched && err == nil && st.salt != "" {
		kv, err = e.keys.Entry(e.Env()["PULUMI_CONFIG_PASSPHRASE"], st.salt)
		ok = err == nil
	}
	return kv, ok
}

// settings is what writeConfig reads of a stack's settings files.
type settings struct {
	// digest covers the files' bytes.
	digest string
	salt   string // the passphrase provider's encryption state, if it keeps the secrets (passkey.State)
}

// readSettings reads the stack's settings files in its workspace, as
// Pulumi looks them up (Pulumi.<stack>.yaml, .yml, .json); an absent file
// counts as absent.
func readSettings(wd, stack string) (settings, error) {
	var out settings
	h := sha256.New()
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		b, err := os.ReadFile(filepath.Join(wd, "Pulumi."+stack+ext))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(h, "%s absent;", ext)
			continue
		case err != nil:
			return settings{}, err
		}
		fmt.Fprintf(h, "%s %d:", ext, len(b))
		h.Write(b)
		if ext != ".json" {
			out.salt = passkey.State(b)
		}
	}
	out.digest = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// configDigest digests the stack's configuration: keyed with the Engine's
// random key when it stays in memory.
func (e *Engine) configDigest(p Program, durable bool) string {
	key := []byte("slipway-config-v1")
	if !durable {
		key = e.configs.secretKey()
	}
	h := hmac.New(sha256.New, key)
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(p.Project)
	field(p.Stack)
	field(e.secrets)
	keys := make([]string, 0, len(p.Config))
	for k := range p.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k)
		field(strconv.FormatBool(p.Config[k].Secret))
		field(p.Config[k].Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// lastConfigWrite returns the marker of the last configuration write in wd.
func (e *Engine) lastConfigWrite(wd string, durable bool) (configMarker, bool) {
	if !durable {
		e.configs.mu.Lock()
		defer e.configs.mu.Unlock()
		m, ok := e.configs.by[wd]
		return m, ok
	}
	var m configMarker
	b, err := os.ReadFile(filepath.Join(wd, ConfigMarkerFile))
	if err != nil || json.Unmarshal(b, &m) != nil || m.Settings == "" || m.Config == "" {
		return configMarker{}, false
	}
	return m, true
}

// forgetConfigWrite removes the markers of wd.
func (e *Engine) forgetConfigWrite(wd string) {
	e.configs.mu.Lock()
	delete(e.configs.by, wd)
	e.configs.mu.Unlock()
	_ = os.Remove(filepath.Join(wd, ConfigMarkerFile))
}

// rememberConfigWrite stores the marker of a configuration write.
func (e *Engine) rememberConfigWrite(wd string, m configMarker, durable bool) error {
	if !durable {
		e.configs.mu.Lock()
		defer e.configs.mu.Unlock()
		if e.configs.by == nil {
			e.configs.by = map[string]configMarker{}
		}
		e.configs.by[wd] = m
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(wd, ConfigMarkerFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(wd, ConfigMarkerFile))
}

// secretKey returns the random key of the in-memory markers, made on
// first use.
func (c *configMarkers) secretKey() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key == nil {
		c.key = make([]byte, 32)
		_, _ = rand.Read(c.key)
	}
	return c.key
}

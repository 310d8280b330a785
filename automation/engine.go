// Package automation drives Slipway environments through the Pulumi engine
// in-process, with inline programs and the Automation API
// (github.com/pulumi/pulumi/sdk/v3/go/auto).
//
// An Engine owns a directory: each environment gets a workspace of its own
// under it (no workspace.json shared between stacks), and by default the
// state lives in a file backend there. The pulumi CLI and the Kubernetes
// provider plugin come from package toolchain and are built once when missing.
package automation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// Engine runs programs against one backend. It is safe for concurrent use by
// several environments.
type Engine struct {
	dir        string
	backend    string
	pulumiHome string
	secrets    string
	passphrase string
	env        map[string]string
	cmd        auto.PulumiCommand
	log        *slog.Logger
	analyzer   string
}

type engineConfig struct {
	dir, backend, pulumiHome, secrets string
	passphrase                        *string
	env                               map[string]string
	resolver                          *toolchain.Resolver
	log                               *slog.Logger
	analyzer                          string
}

// EngineOption configures New.
type EngineOption func(*engineConfig)

// WithDir sets the directory the engine owns: workspaces and, by default, the
// file backend's state (default ".slipway" in the working directory).
func WithDir(dir string) EngineOption { return func(c *engineConfig) { c.dir = dir } }

// WithBackend sets the Pulumi backend URL (file://, s3://, https://api.pulumi.com, ...).
// The default is a file backend in <dir>/state.
func WithBackend(url string) EngineOption { return func(c *engineConfig) { c.backend = url } }

// WithPulumiHome sets PULUMI_HOME for the engine (plugins, credentials).
// The default is $PULUMI_HOME or ~/.pulumi.
func WithPulumiHome(dir string) EngineOption { return func(c *engineConfig) { c.pulumiHome = dir } }

// WithSecretsProvider sets the secrets provider of new stacks ("passphrase",
// "awskms://...", ...). The default is "passphrase".
func WithSecretsProvider(p string) EngineOption { return func(c *engineConfig) { c.secrets = p } }

// WithPassphrase sets the passphrase of the passphrase secrets provider. The
// default is $PULUMI_CONFIG_PASSPHRASE, else empty (fine for local state).
func WithPassphrase(p string) EngineOption { return func(c *engineConfig) { c.passphrase = &p } }

// WithEnv adds environment variables for every engine run.
func WithEnv(env map[string]string) EngineOption {
	return func(c *engineConfig) {
		for k, v := range env {
			c.env[k] = v
		}
	}
}

// WithResolver sets the toolchain resolver (default toolchain.New()).
func WithResolver(r *toolchain.Resolver) EngineOption {
	return func(c *engineConfig) { c.resolver = r }
}

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) EngineOption { return func(c *engineConfig) { c.log = l } }

// New resolves the toolchain (building it when missing) and returns an Engine.
func New(ctx context.Context, opts ...EngineOption) (*Engine, error) {
	c := engineConfig{dir: ".slipway", secrets: "passphrase", env: map[string]string{}}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.resolver == nil {
		c.resolver = toolchain.New()
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return nil, fmt.Errorf("automation: WithDir(%q): %w", c.dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("automation: WithDir(%q): %w", c.dir, err)
	}
	if c.backend == "" {
		state := filepath.Join(dir, "state")
		if err := os.MkdirAll(state, 0o755); err != nil {
			return nil, fmt.Errorf("automation: state directory: %w", err)
		}
		c.backend = "file://" + state
	}
	if err := validateBackend(c.backend); err != nil {
		return nil, err
	}
	if c.pulumiHome == "" {
		if c.pulumiHome, err = toolchain.DefaultPulumiHome(); err != nil {
			return nil, err
		}
	}
	if c.passphrase == nil {
		p := os.Getenv("PULUMI_CONFIG_PASSPHRASE")
		c.passphrase = &p
	}
	root, err := c.resolver.PulumiCLI(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.resolver.KubernetesProvider(ctx, c.pulumiHome); err != nil {
		return nil, err
	}
	if c.analyzer == "" {
		if c.analyzer, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("automation: finding the analyzer binary: %w", err)
		}
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, Version: semver.MustParse(toolchain.PulumiVersion)})
	if err != nil {
		return nil, fmt.Errorf("automation: pulumi CLI in %s: %w", root, err)
	}
	return &Engine{dir: dir, backend: c.backend, pulumiHome: c.pulumiHome, secrets: c.secrets,
		passphrase: *c.passphrase, env: c.env, cmd: cmd, log: c.log, analyzer: c.analyzer}, nil
}

var backendScheme = regexp.MustCompile(`^(file|s3|gs|azblob|https?)://`)

func validateBackend(url string) error {
	if !backendScheme.MatchString(url) {
		return fmt.Errorf("automation: backend URL %q is not supported; use file:///abs/dir, s3://bucket, gs://, azblob:// or https://api.pulumi.com", url)
	}
	return nil
}

// Backend returns the backend URL the engine uses.
func (e *Engine) Backend() string { return e.backend }

// Dir returns the directory the engine owns.
func (e *Engine) Dir() string { return e.dir }

// ConfigValue is one stack configuration value.
type ConfigValue struct {
	Value  string
	Secret bool
}

// Program is one environment's inline program and its stack configuration.
type Program struct {
	// Project is the Pulumi project name.
	Project string
	// Stack is the stack (environment) name.
	Stack string
	// Run is the inline Pulumi program.
	Run pulumi.RunFunc
	// Config is written to the stack before each run; secrets stay encrypted.
	Config map[string]ConfigValue
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// Validate checks the program's names and function before any engine run.
func (p Program) Validate() error {
	var errs []error
	if !nameRE.MatchString(p.Project) {
		errs = append(errs, fmt.Errorf("automation: Program.Project %q is invalid; use letters, digits, '-', '_' or '.' (1-100 characters)", p.Project))
	}
	if !nameRE.MatchString(p.Stack) {
		errs = append(errs, fmt.Errorf("automation: Program.Stack %q is invalid; use letters, digits, '-', '_' or '.' (1-100 characters)", p.Stack))
	}
	if p.Run == nil {
		errs = append(errs, errors.New("automation: Program.Run is nil; pass the inline pulumi.RunFunc to deploy"))
	}
	return errors.Join(errs...)
}

// workspaceOptions are the options of every workspace the engine opens.
func (e *Engine) workspaceOptions(workDir string) []auto.LocalWorkspaceOption {
	env := map[string]string{
		"PULUMI_BACKEND_URL":                   e.backend,
		"PULUMI_CONFIG_PASSPHRASE":             e.passphrase,
		"PULUMI_SKIP_UPDATE_CHECK":             "true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
	}
	for k, v := range e.env {
		env[k] = v
	}
	return []auto.LocalWorkspaceOption{auto.WorkDir(workDir), auto.Pulumi(e.cmd), auto.PulumiHome(e.pulumiHome),
		auto.EnvVars(env), auto.SecretsProvider(e.secrets)}
}

// Stack selects (creating when missing) the program's stack in its own
// workspace and writes its configuration.
func (e *Engine) Stack(ctx context.Context, p Program) (*Stack, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	wd := filepath.Join(e.dir, "workspaces", p.Project, p.Stack)
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, err
	}
	s, err := auto.UpsertStackInlineSource(ctx, p.Stack, p.Project, p.Run, e.workspaceOptions(wd)...)
	if err != nil && strings.Contains(err.Error(), "failed to load checkpoint") {
		// A process killed while writing the checkpoint leaves it truncated;
		// the backend keeps the previous one as .bak.
		restored, rerr := restoreCheckpoint(e.backend, p.Project, p.Stack)
		switch {
		case rerr != nil:
			err = errors.Join(err, rerr)
		default:
			// Restored from the backup, or rewritten meanwhile by its writer: read it again.
			if restored != "" {
				e.log.Warn("restored a truncated checkpoint from its backup", "stack", p.Stack, "corrupt", restored)
			}
			s, err = auto.UpsertStackInlineSource(ctx, p.Stack, p.Project, p.Run, e.workspaceOptions(wd)...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("automation: stack %s/%s: %w", p.Project, p.Stack, err)
	}
	if len(p.Config) > 0 {
		cm := auto.ConfigMap{}
		for k, v := range p.Config {
			cm[k] = auto.ConfigValue{Value: v.Value, Secret: v.Secret}
		}
		if err := s.SetAllConfig(ctx, cm); err != nil {
			return nil, fmt.Errorf("automation: writing config of %s/%s: %w", p.Project, p.Stack, err)
		}
	}
	st := &Stack{stack: s, project: p.Project, name: p.Stack, backend: e.backend, log: e.log.With("project", p.Project, "stack", p.Stack)}
	// Repair what a killed run may have left (stale lock, pending operations).
	if _, err := st.Recover(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

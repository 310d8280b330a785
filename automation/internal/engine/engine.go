package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/internal/passkey"
	"github.com/slipwayhq/slipway/automation/internal/pulumicli"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/telemetry"
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
	pulumi     toolchain.Pulumi
	log        *slog.Logger
	analyzer   string
	// forceUnlock and repair are the explicit recovery permissions (see
	// WithForceUnlock and WithRepair).
	forceUnlock, repair bool
	deadHosts           []string
	// pluginDownload lets the engine download missing plugins (WithPluginDownload).
	pluginDownload bool
	resolver       *toolchain.Resolver
	// k8sMu guards k8sReady: the Kubernetes provider is resolved once per
	// Engine, by the first program that needs it (again after a failure).
	k8sMu    sync.Mutex
	k8sReady bool
	obs      observability
	// configs are the in-memory markers of configuration writes.
	configs configMarkers
	// weakSecrets warns, once, that secrets are stored under an empty
	// passphrase (see Engine.warnWeakSecrets).
	weakSecrets sync.Once
	keys        passkey.Cache // the passphrase keys it derived (Engine.PassphraseKey)
}

// Config is what New builds an Engine from; package automation's options
// set it (see automation.EngineOption for each field's meaning and default).
type Config struct {
	Dir, Backend, PulumiHome, Secrets string
	Passphrase                        *string
	Env                               map[string]string
	Resolver                          *toolchain.Resolver
	Log                               *slog.Logger
	Analyzer                          string
	Plugins                           []PluginBinary
	ForceUnlock, Repair, LocalRecords bool
	DeadHosts                         []string
	PluginDownload                    bool
	TracerProvider                    trace.TracerProvider
	Metrics                           *telemetry.Metrics
	Notifier                          chatops.Notifier
	NoRuns                            bool
	Fence                             *string
	// WrapCommand, when set, wraps the pulumi CLI the engine runs (tests
	// count its commands).
	WrapCommand func(auto.PulumiCommand) auto.PulumiCommand
}

// PluginBinary is a resource plugin given by path (automation.WithPlugin).
type PluginBinary struct{ Name, Version, Path string }

// New resolves the pulumi CLI (building it when missing) and returns an
// Engine. The Kubernetes provider plugin is resolved later, by the first
// program that lists KubernetesPlugin.
func New(ctx context.Context, configure func(*Config)) (*Engine, error) {
	c := Config{Dir: ".slipway", Env: map[string]string{}}
	configure(&c)
	// The pulumi CLI's own conventions apply where no option is given.
	if c.Backend == "" {
		c.Backend = os.Getenv("PULUMI_BACKEND_URL")
	}
	if c.Secrets == "" {
		c.Secrets = cmp.Or(os.Getenv("PULUMI_SECRETS_PROVIDER"), "passphrase")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Resolver == nil {
		c.Resolver = toolchain.New()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("automation: WithDir(%q): %w", c.Dir, err)
	}
	// The directory holds stack state and records that the passphrase (often
	// empty) is the only protection of: only its owner may read it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("automation: WithDir(%q): %w", c.Dir, err)
	}
	if c.Backend == "" {
		state := filepath.Join(dir, "state")
		if err := PrivateDir(state); err != nil {
			return nil, fmt.Errorf("automation: state directory: %w", err)
		}
		c.Backend = "file://" + state
	}
	if err := ValidateBackend(c.Backend); err != nil {
		return nil, err
	}
	if !c.LocalRecords && !statestore.Supported(c.Backend) {
		return nil, &RecordsError{Backend: mask.URL(c.Backend)}
	}
	if u, err := url.Parse(c.Backend); err == nil && u.Scheme == "file" && u.Path != "" {
		// A file backend is a directory; the engine makes it on first use.
		if err := os.MkdirAll(u.Path, 0o700); err != nil {
			return nil, fmt.Errorf("automation: backend directory %s: %w", u.Path, err)
		}
	}
	if c.PulumiHome == "" {
		if c.PulumiHome, err = toolchain.DefaultPulumiHome(); err != nil {
			return nil, err
		}
	}
	if c.Passphrase == nil {
		if p, ok := os.LookupEnv("PULUMI_CONFIG_PASSPHRASE"); ok {
			c.Passphrase = &p
		} else if f := os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("automation: PULUMI_CONFIG_PASSPHRASE_FILE: %w; point it at a readable file holding the passphrase", err)
			}
			p := strings.TrimSpace(string(b)) // as the pulumi CLI reads it
			c.Passphrase = &p
		} else if c.Secrets == "passphrase" && !strings.HasPrefix(c.Backend, "file://") {
			return nil, fmt.Errorf("automation: backend %s is shared, and its secrets would be encrypted with an empty passphrase; "+
				"set PULUMI_CONFIG_PASSPHRASE (or WithPassphrase), or use a KMS secrets provider (WithSecretsProvider)", mask.URL(c.Backend))
		} else {
			empty := ""
			c.Passphrase = &empty
		}
	}
	for _, p := range c.Plugins {
		if _, err := toolchain.InstallPlugin(p.Path, c.PulumiHome, "resource", p.Name, p.Version); err != nil {
			return nil, fmt.Errorf("automation: WithPlugin(%q, %q, %q): %w", p.Name, p.Version, p.Path, err)
		}
	}
	pl, err := c.Resolver.Pulumi(ctx)
	if err != nil {
		return nil, err
	}
	version, err := semver.ParseTolerant(pl.Version)
	if err != nil {
		return nil, fmt.Errorf("automation: pulumi CLI %s: version %q: %w", pl.Bin(), pl.Version, err)
	}
	if c.Analyzer == "" {
		if c.Analyzer, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("automation: finding the analyzer binary: %w", err)
		}
	}
	// The resolver established the CLI's version: no `pulumi version` again.
	cmd := pulumicli.New(pl.Root, version)
	if c.Fence != nil {
		if !pl.Patched {
			return nil, fmt.Errorf("automation: WithFence needs Slipway's patched pulumi build (v%s), which enforces the fence inside the engine; "+
				"the CLI is v%s from %s (%s): remove it from PATH or WithPulumi, or run `slipway toolchain build`",
				toolchain.PatchedPulumiVersion, pl.Version, pl.Source, pl.Bin())
		}
		c.Env[fence.Env] = *c.Fence
		cmd.Group = true
	}
	var run auto.PulumiCommand = cmd
	if c.WrapCommand != nil {
		run = c.WrapCommand(cmd)
	}
	return &Engine{dir: dir, backend: c.Backend, pulumiHome: c.PulumiHome, secrets: c.Secrets,
		passphrase: *c.Passphrase, env: c.Env, cmd: run, pulumi: pl, log: c.Log, analyzer: c.Analyzer,
		forceUnlock: c.ForceUnlock, repair: c.Repair, deadHosts: c.DeadHosts, pluginDownload: c.PluginDownload,
		resolver: c.Resolver, obs: observability{tp: c.TracerProvider, metrics: c.Metrics, notifier: c.Notifier, noRuns: c.NoRuns}}, nil
}

// Pulumi returns the pulumi CLI the engine runs: where it is, its version,
// and whether it is Slipway's patched build.
func (e *Engine) Pulumi() toolchain.Pulumi { return e.pulumi }

// PrivateDir makes dir (and its missing parents) with mode 0700, and
// takes group and other access away from it when it already exists: a
// directory Slipway keeps state, workspaces or records in.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(dir, fi.Mode().Perm()&0o700)
	}
	return nil
}

// ValidateBackend checks a backend URL without contacting it: a supported
// scheme, an absolute directory for file://, a bucket or host for the rest.
func ValidateBackend(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("automation: backend URL %q does not parse (%v); use file:///abs/dir, s3://bucket, gs://bucket, azblob://container or https://api.pulumi.com", mask.URL(raw), err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "~" || u.Host == "" && !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("automation: backend URL %q needs an absolute directory, e.g. file:///var/lib/slipway/state or file://~/state", mask.URL(raw))
		}
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return fmt.Errorf("automation: backend URL %q names no bucket; use %s://<bucket>", mask.URL(raw), u.Scheme)
		}
	case "https", "http":
		if u.Host == "" {
			return fmt.Errorf("automation: backend URL %q names no host; use e.g. https://api.pulumi.com", mask.URL(raw))
		}
	default:
		return fmt.Errorf("automation: backend URL %q is not supported; use file:///abs/dir, s3://bucket, gs://bucket, azblob://container or https://api.pulumi.com", mask.URL(raw))
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
	// Policies are policy pack directories (see Engine.PolicyDir) enforced
	// on every operation of the stack that can change infrastructure:
	// preview, up, drift remediation, deploy, rollback and ephemeral create.
	Policies []string
	// Version identifies the program and its parameters (for example the
	// encoded parameters); it is recorded with every release, and a lookup
	// function must be able to rebuild the program from it for Rollback.
	Version string
	// Plugins are the resource plugins the program needs. KubernetesPlugin
	// is resolved (built when missing) by the engine; every other plugin
	// must be installed in PULUMI_HOME or given with WithPlugin, and the
	// stack is refused otherwise, unless the engine may download plugins
	// (WithPluginDownload).
	Plugins []Plugin
}

// Plugin names a resource provider plugin and its version.
type Plugin struct {
	Name, Version string
}

// KubernetesPlugin is the Kubernetes provider plugin that Slipway builds
// (package toolchain). A program that uses the Kubernetes provider lists it
// in Program.Plugins; the engine resolves it when it opens such a program,
// once per Engine.
var KubernetesPlugin = Plugin{Name: "kubernetes", Version: toolchain.KubernetesProviderVersion}

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

// logger is the engine's logger, nil for a nil engine.
func (e *Engine) Logger() *slog.Logger {
	if e == nil {
		return nil
	}
	return e.log
}

// RecoveryFlags returns what the engine's options permit or prove about
// stack locks, and whether recovery may repair (see automation.WithRepair).
func (e *Engine) RecoveryFlags() (unlock recovery.Unlock, repair bool) {
	if e == nil {
		return recovery.Unlock{}, false
	}
	return recovery.Unlock{Force: e.forceUnlock, DeadHosts: e.deadHosts}, e.repair
}

// Command returns the pulumi CLI the engine runs its commands with.
func (e *Engine) Command() auto.PulumiCommand { return e.cmd }

// PulumiHome returns the engine's PULUMI_HOME (plugins, credentials).
func (e *Engine) PulumiHome() string { return e.pulumiHome }

// SecretsProvider returns the secrets provider of the engine's new stacks.
func (e *Engine) SecretsProvider() string { return e.secrets }

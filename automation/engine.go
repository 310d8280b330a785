// Package automation drives Slipway environments through the Pulumi engine
// in-process, with inline programs and the Automation API
// (github.com/pulumi/pulumi/sdk/v3/go/auto).
//
// An Engine owns a directory: each environment gets a workspace of its own
// under it (no workspace.json shared between stacks), and by default the
// state lives in a file backend there. The pulumi CLI, and the Kubernetes
// provider plugin for programs that list KubernetesPlugin, come from package
// toolchain and are built once when missing.
//
// Each verb takes its own options (packages optpreview, optup, optrefresh,
// optdestroy, optdrift and optdeploy), so an option a verb does not support
// does not compile.
package automation

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

	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/internal/pulumicli"
	"github.com/slipwayhq/slipway/automation/statestore"
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
}

type engineConfig struct {
	dir, backend, pulumiHome, secrets string
	passphrase                        *string
	env                               map[string]string
	resolver                          *toolchain.Resolver
	log                               *slog.Logger
	analyzer                          string
	plugins                           []pluginBinary
	forceUnlock, repair, localRecords bool
	deadHosts                         []string
	pluginDownload                    bool
	obs                               observability
	fence                             *string
}

// pluginBinary is a resource plugin given by path (WithPlugin).
type pluginBinary struct{ name, version, path string }

// EngineOption configures New.
type EngineOption func(*engineConfig)

// WithDir sets the directory the engine owns: workspaces and, by default, the
// file backend's state (default ".slipway" in the working directory).
func WithDir(dir string) EngineOption { return func(c *engineConfig) { c.dir = dir } }

// WithBackend sets the Pulumi backend URL (file://, s3://, https://api.pulumi.com, ...).
// The default is $PULUMI_BACKEND_URL, as for the pulumi CLI, else a file
// backend in <dir>/state.
func WithBackend(url string) EngineOption { return func(c *engineConfig) { c.backend = url } }

// WithPulumiHome sets PULUMI_HOME for the engine (plugins, credentials).
// The default is $PULUMI_HOME or ~/.pulumi.
func WithPulumiHome(dir string) EngineOption { return func(c *engineConfig) { c.pulumiHome = dir } }

// WithSecretsProvider sets the secrets provider of new stacks ("passphrase",
// "awskms://...", ...). The default is $PULUMI_SECRETS_PROVIDER, else
// "passphrase".
func WithSecretsProvider(p string) EngineOption { return func(c *engineConfig) { c.secrets = p } }

// WithPassphrase sets the passphrase of the passphrase secrets provider. The
// default is $PULUMI_CONFIG_PASSPHRASE, else the contents of the file that
// $PULUMI_CONFIG_PASSPHRASE_FILE names (trimmed, as the pulumi CLI reads
// it). An empty passphrase is accepted for a local file backend; any other
// backend refuses it unless it is set explicitly (here, or as an empty
// PULUMI_CONFIG_PASSPHRASE).
func WithPassphrase(p string) EngineOption { return func(c *engineConfig) { c.passphrase = &p } }

// WithLocalRecords accepts a backend that Slipway has no driver for
// (gs://, azblob://, Pulumi Cloud) although its records — release history
// (rollback's last known good), run history, approval requests and
// decisions, ephemeral tags — then live only in <dir>/releases on this
// machine: a rollback, a promotion's approval, GC or the dashboard on
// another machine does not see them. Without it New refuses such a backend.
func WithLocalRecords() EngineOption { return func(c *engineConfig) { c.localRecords = true } }

// WithEnv adds environment variables for every engine run.
func WithEnv(env map[string]string) EngineOption {
	return func(c *engineConfig) {
		for k, v := range env {
			c.env[k] = v
		}
	}
}

// WithFence fences every write the engine and Slipway's record store make
// to the backend with the fence file at path (see package fence): each
// write, copy and delete (checkpoints, backups, history, locks, records)
// is refused once the file's deadline has passed or when the file is
// missing, and the engine's lock records the file's fencing token. The
// pulumi CLI then runs in a process group of its own, so that its whole
// tree can be killed (see ErrKill). Only the CLI Slipway builds enforces
// the fence inside the engine (toolchain.FenceFileEnv); the variable is
// set after WithEnv's, which cannot override it.
func WithFence(path string) EngineOption { return func(c *engineConfig) { c.fence = &path } }

// WithResolver sets the toolchain resolver (default toolchain.New()).
func WithResolver(r *toolchain.Resolver) EngineOption {
	return func(c *engineConfig) { c.resolver = r }
}

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) EngineOption { return func(c *engineConfig) { c.log = l } }

// WithPlugin provides the binary of a resource provider plugin that Slipway
// does not build, such as the AWS provider ("aws", toolchain.AWSProviderVersion,
// "/opt/pulumi/pulumi-resource-aws"). New installs it into PULUMI_HOME; the
// engine downloads no plugin unless WithPluginDownload is given.
func WithPlugin(name, version, path string) EngineOption {
	return func(c *engineConfig) { c.plugins = append(c.plugins, pluginBinary{name, version, path}) }
}

// WithPluginDownload lets the engine download a resource plugin that is
// neither installed in PULUMI_HOME nor given with WithPlugin, from the
// plugin's publisher, as plain Pulumi does (CLI: --allow-plugin-download).
// Without it, which is the default, the engine never downloads anything: a
// program that lists a missing plugin is refused before the run with a
// *MissingPluginError, and the engine runs with automatic plugin
// acquisition disabled.
func WithPluginDownload() EngineOption { return func(c *engineConfig) { c.pluginDownload = true } }

// New resolves the pulumi CLI (building it when missing) and returns an
// Engine. The Kubernetes provider plugin is resolved later, by the first
// program that lists KubernetesPlugin.
func New(ctx context.Context, opts ...EngineOption) (*Engine, error) {
	c := engineConfig{dir: ".slipway", env: map[string]string{}}
	for _, o := range opts {
		o(&c)
	}
	// The pulumi CLI's own conventions apply where no option is given.
	if c.backend == "" {
		c.backend = os.Getenv("PULUMI_BACKEND_URL")
	}
	if c.secrets == "" {
		c.secrets = cmp.Or(os.Getenv("PULUMI_SECRETS_PROVIDER"), "passphrase")
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.resolver == nil {
		c.resolver = toolchain.New()
	}
	if c.obs.tp == nil {
		c.obs.tp = otel.GetTracerProvider()
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return nil, fmt.Errorf("automation: WithDir(%q): %w", c.dir, err)
	}
	// The directory holds stack state and records that the passphrase (often
	// empty) is the only protection of: only its owner may read it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("automation: WithDir(%q): %w", c.dir, err)
	}
	if c.backend == "" {
		state := filepath.Join(dir, "state")
		if err := PrivateDir(state); err != nil {
			return nil, fmt.Errorf("automation: state directory: %w", err)
		}
		c.backend = "file://" + state
	}
	if err := ValidateBackend(c.backend); err != nil {
		return nil, err
	}
	if !c.localRecords && !statestore.Supported(c.backend) {
		return nil, &RecordsError{Backend: redactURL(c.backend)}
	}
	if u, err := url.Parse(c.backend); err == nil && u.Scheme == "file" && u.Path != "" {
		// A file backend is a directory; the engine makes it on first use.
		if err := os.MkdirAll(u.Path, 0o700); err != nil {
			return nil, fmt.Errorf("automation: backend directory %s: %w", u.Path, err)
		}
	}
	if c.pulumiHome == "" {
		if c.pulumiHome, err = toolchain.DefaultPulumiHome(); err != nil {
			return nil, err
		}
	}
	if c.passphrase == nil {
		if p, ok := os.LookupEnv("PULUMI_CONFIG_PASSPHRASE"); ok {
			c.passphrase = &p
		} else if f := os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("automation: PULUMI_CONFIG_PASSPHRASE_FILE: %w; point it at a readable file holding the passphrase", err)
			}
			p := strings.TrimSpace(string(b)) // as the pulumi CLI reads it
			c.passphrase = &p
		} else if c.secrets == "passphrase" && !strings.HasPrefix(c.backend, "file://") {
			return nil, fmt.Errorf("automation: backend %s is shared, and its secrets would be encrypted with an empty passphrase; "+
				"set PULUMI_CONFIG_PASSPHRASE (or WithPassphrase), or use a KMS secrets provider (WithSecretsProvider)", redactURL(c.backend))
		} else {
			empty := ""
			c.passphrase = &empty
		}
	}
	for _, p := range c.plugins {
		if _, err := toolchain.InstallPlugin(p.path, c.pulumiHome, "resource", p.name, p.version); err != nil {
			return nil, fmt.Errorf("automation: WithPlugin(%q, %q, %q): %w", p.name, p.version, p.path, err)
		}
	}
	pl, err := c.resolver.Pulumi(ctx)
	if err != nil {
		return nil, err
	}
	version, err := semver.ParseTolerant(pl.Version)
	if err != nil {
		return nil, fmt.Errorf("automation: pulumi CLI %s: version %q: %w", pl.Bin(), pl.Version, err)
	}
	if c.analyzer == "" {
		if c.analyzer, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("automation: finding the analyzer binary: %w", err)
		}
	}
	// The resolver established the CLI's version: no `pulumi version` again.
	cmd := pulumicli.New(pl.Root, version)
	if c.fence != nil {
		if !pl.Patched {
			return nil, fmt.Errorf("automation: WithFence needs Slipway's patched pulumi build (v%s), which enforces the fence inside the engine; "+
				"the CLI is v%s from %s (%s): remove it from PATH or WithPulumi, or run `slipway toolchain build`",
				toolchain.PatchedPulumiVersion, pl.Version, pl.Source, pl.Bin())
		}
		c.env[fence.Env] = *c.fence
		cmd.Group = true
	}
	return &Engine{dir: dir, backend: c.backend, pulumiHome: c.pulumiHome, secrets: c.secrets,
		passphrase: *c.passphrase, env: c.env, cmd: cmd, pulumi: pl, log: c.log, analyzer: c.analyzer,
		forceUnlock: c.forceUnlock, repair: c.repair, deadHosts: c.deadHosts, pluginDownload: c.pluginDownload,
		resolver: c.resolver, obs: c.obs}, nil
}

// RecordsError refuses a backend that Slipway keeps no records in: its
// release history, run history, approvals and ephemeral tags would stay on
// one machine. WithLocalRecords (the CLI's --local-records) accepts that.
// Get it with errors.As.
type RecordsError struct {
	// Backend is the backend URL, without its query.
	Backend string
}

// Error names what would be lost and both ways out.
func (e *RecordsError) Error() string {
	return fmt.Sprintf("automation: backend %s has no driver for Slipway's records (release history for rollback, run history, "+
		"approval requests and decisions, ephemeral tags): they would live only in this machine's directory, where rollback, approvals, "+
		"gc and the dashboard on any other machine cannot see them; use a file:// or s3:// backend, or accept local records with "+
		"WithLocalRecords (--local-records)", e.Backend)
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

// redactURL drops the query of a backend URL (it may carry credentials).
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// ValidateBackend checks a backend URL without contacting it: a supported
// scheme, an absolute directory for file://, a bucket or host for the rest.
func ValidateBackend(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("automation: backend URL %q does not parse (%v); use file:///abs/dir, s3://bucket, gs://bucket, azblob://container or https://api.pulumi.com", redactURL(raw), err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "~" || u.Host == "" && !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("automation: backend URL %q needs an absolute directory, e.g. file:///var/lib/slipway/state or file://~/state", redactURL(raw))
		}
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return fmt.Errorf("automation: backend URL %q names no bucket; use %s://<bucket>", redactURL(raw), u.Scheme)
		}
	case "https", "http":
		if u.Host == "" {
			return fmt.Errorf("automation: backend URL %q names no host; use e.g. https://api.pulumi.com", redactURL(raw))
		}
	default:
		return fmt.Errorf("automation: backend URL %q is not supported; use file:///abs/dir, s3://bucket, gs://bucket, azblob://container or https://api.pulumi.com", redactURL(raw))
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

// kubernetesProviderType is the type token of Kubernetes provider resources in a stack's state.
const kubernetesProviderType = "pulumi:providers:kubernetes"

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

// UnknownStackError says an operation named a stack the backend does not hold.
type UnknownStackError struct {
	Project, Stack string
	// Known lists the stacks of the project in the backend.
	Known []string
}

// Error implements error.
func (e *UnknownStackError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("automation: environment %q does not exist in project %s (it has: %s); check the name, or create it with up", e.Stack, e.Project, known)
}

// IsUnknownStack reports whether err is (or wraps) an *UnknownStackError.
func IsUnknownStack(err error) bool {
	var u *UnknownStackError
	return errors.As(err, &u)
}

// MissingPluginError says a program needs a resource plugin that is neither
// installed nor given, and the engine may not download it.
// Get it with errors.As (a *MissingPluginError).
type MissingPluginError struct {
	Plugin Plugin
	// Path is where the engine looks for it.
	Path string
}

// Error implements error.
func (e *MissingPluginError) Error() string {
	return fmt.Sprintf("automation: the program needs the resource plugin %s v%s, which Slipway does not build and does not download by default; "+
		"install it as %s, or pass automation.WithPlugin(%q, %q, \"/path/to/pulumi-resource-%s\") (CLI: --plugin %s=/path/to/pulumi-resource-%s), "+
		"or, with a network, let the engine download it: automation.WithPluginDownload() (CLI: --allow-plugin-download)",
		e.Plugin.Name, e.Plugin.Version, e.Path, e.Plugin.Name, e.Plugin.Version, e.Plugin.Name, e.Plugin.Name, e.Plugin.Name)
}

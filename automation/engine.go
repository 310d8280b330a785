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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"go.opentelemetry.io/otel"

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
	log        *slog.Logger
	analyzer   string
	// forceUnlock and repair are the explicit recovery permissions (see
	// WithForceUnlock and WithRepair).
	forceUnlock, repair bool
	deadHosts           []string
	resolver            *toolchain.Resolver
	// k8sMu guards k8sReady: the Kubernetes provider is resolved once per
	// Engine, by the first program that needs it (again after a failure).
	k8sMu    sync.Mutex
	k8sReady bool
	obs      observability
}

type engineConfig struct {
	dir, backend, pulumiHome, secrets string
	passphrase                        *string
	env                               map[string]string
	resolver                          *toolchain.Resolver
	log                               *slog.Logger
	analyzer                          string
	plugins                           []pluginBinary
	forceUnlock, repair               bool
	deadHosts                         []string
	obs                               observability
}

// pluginBinary is a resource plugin given by path (WithPlugin).
type pluginBinary struct{ name, version, path string }

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
// default is $PULUMI_CONFIG_PASSPHRASE. An empty passphrase is accepted for a
// local file backend; any other backend refuses it unless it is set
// explicitly (here, or as an empty PULUMI_CONFIG_PASSPHRASE).
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

// WithPlugin provides the binary of a resource provider plugin that Slipway
// does not build, such as the AWS provider ("aws", toolchain.AWSProviderVersion,
// "/opt/pulumi/pulumi-resource-aws"). New installs it into PULUMI_HOME; the
// engine never downloads a plugin.
func WithPlugin(name, version, path string) EngineOption {
	return func(c *engineConfig) { c.plugins = append(c.plugins, pluginBinary{name, version, path}) }
}

// New resolves the pulumi CLI (building it when missing) and returns an
// Engine. The Kubernetes provider plugin is resolved later, by the first
// program that lists KubernetesPlugin.
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
	if c.obs.tp == nil {
		c.obs.tp = otel.GetTracerProvider()
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
	if err := ValidateBackend(c.backend); err != nil {
		return nil, err
	}
	if u, err := url.Parse(c.backend); err == nil && u.Scheme == "file" && u.Path != "" {
		// A file backend is a directory; the engine makes it on first use.
		if err := os.MkdirAll(u.Path, 0o755); err != nil {
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
	root, err := c.resolver.PulumiCLI(ctx)
	if err != nil {
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
		passphrase: *c.passphrase, env: c.env, cmd: cmd, log: c.log, analyzer: c.analyzer,
		forceUnlock: c.forceUnlock, repair: c.repair, deadHosts: c.deadHosts, resolver: c.resolver, obs: c.obs}, nil
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
	// stack is refused otherwise. The engine never downloads a plugin.
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

// kubernetes resolves the Kubernetes provider plugin into the engine's
// PULUMI_HOME (building it when missing), once per Engine; after a failure
// the next call tries again.
func (e *Engine) kubernetes(ctx context.Context) error {
	e.k8sMu.Lock()
	defer e.k8sMu.Unlock()
	if e.k8sReady {
		return nil
	}
	if _, err := e.resolver.KubernetesProvider(ctx, e.pulumiHome); err != nil {
		return fmt.Errorf("automation: resolving the Kubernetes provider plugin the program lists: %w", err)
	}
	e.k8sReady = true
	return nil
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

// engineEnv is the environment of every engine run.
func (e *Engine) engineEnv() map[string]string {
	env := map[string]string{
		"PULUMI_BACKEND_URL":                   e.backend,
		"PULUMI_CONFIG_PASSPHRASE":             e.passphrase,
		"PULUMI_SKIP_UPDATE_CHECK":             "true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
		// Never download a plugin: a missing one is an error before the run.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	for k, v := range e.env {
		env[k] = v
	}
	return env
}

// workspaceOptions are the options of every workspace the engine opens.
func (e *Engine) workspaceOptions(workDir string) []auto.LocalWorkspaceOption {
	return []auto.LocalWorkspaceOption{auto.WorkDir(workDir), auto.Pulumi(e.cmd), auto.PulumiHome(e.pulumiHome),
		auto.EnvVars(e.engineEnv()), auto.SecretsProvider(e.secrets)}
}

// UpsertStack opens the program's stack in its own workspace, creating it
// when the backend does not hold it yet, and writes its configuration. Only
// operations that may create an environment (preview, up, deploy,
// ephemeral create) use it; every other operation uses SelectStack.
func (e *Engine) UpsertStack(ctx context.Context, p Program) (*Stack, error) {
	return e.open(ctx, p, true)
}

// SelectStack opens the program's stack, which must already exist: an
// unknown stack is refused with an *UnknownStackError listing the stacks the
// backend holds, and nothing is created.
func (e *Engine) SelectStack(ctx context.Context, p Program) (*Stack, error) {
	return e.open(ctx, p, false)
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
// installed nor given, so the engine would try to download it.
type MissingPluginError struct {
	Plugin Plugin
	// Path is where the engine looks for it.
	Path string
}

// Error implements error.
func (e *MissingPluginError) Error() string {
	return fmt.Sprintf("automation: the program needs the resource plugin %s v%s, which Slipway does not build and never downloads; "+
		"install it as %s, or pass automation.WithPlugin(%q, %q, \"/path/to/pulumi-resource-%s\") (CLI: --plugin %s=/path/to/pulumi-resource-%s)",
		e.Plugin.Name, e.Plugin.Version, e.Path, e.Plugin.Name, e.Plugin.Version, e.Plugin.Name, e.Plugin.Name, e.Plugin.Name)
}

// checkPlugins refuses a program whose plugins are not installed.
func (e *Engine) checkPlugins(p Program) error {
	for _, pl := range p.Plugins {
		path := toolchain.PluginPath(e.pulumiHome, "resource", pl.Name, pl.Version)
		if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return &MissingPluginError{Plugin: pl, Path: path}
		}
	}
	return nil
}

// Stacks lists the stacks of project that the backend holds.
func (e *Engine) Stacks(ctx context.Context, project string) ([]string, error) {
	ws, err := e.workspace(ctx, project)
	if err != nil {
		return nil, err
	}
	return stackNames(ctx, ws, project)
}

// stackNames lists the stacks a project's workspace sees, sorted.
func stackNames(ctx context.Context, ws auto.Workspace, project string) ([]string, error) {
	list, err := ws.ListStacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("automation: listing stacks of %s: %w", project, err)
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out, nil
}

func (e *Engine) open(ctx context.Context, p Program, create bool) (st *Stack, err error) {
	ctx, done := e.stage(ctx, telemetry.StageOpen)
	defer func() { done(err) }()
	if err := e.validate(ctx, p); err != nil {
		return nil, err
	}
	wd := filepath.Join(e.dir, "workspaces", p.Project, p.Stack)
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, err
	}
	openStack := func() (auto.Stack, error) {
		if create {
			return auto.UpsertStackInlineSource(ctx, p.Stack, p.Project, p.Run, e.workspaceOptions(wd)...)
		}
		return auto.SelectStackInlineSource(ctx, p.Stack, p.Project, p.Run, e.workspaceOptions(wd)...)
	}
	s, err := openStack()
	var early *Recovery
	if err != nil && strings.Contains(err.Error(), "failed to load checkpoint") {
		// A process killed while writing the checkpoint leaves it truncated;
		// the backend keeps the previous one as .bak.
		rec, rerr := e.restoreCheckpoint(ctx, p.Project, p.Stack)
		switch {
		case rerr != nil:
			err = errors.Join(err, rerr)
		default:
			// Restored from the backup, or rewritten meanwhile by its writer: read it again.
			if rec.RestoredCheckpoint != "" {
				e.log.WarnContext(ctx, "restored a truncated checkpoint from its backup", "stack", p.Stack, "corrupt", rec.RestoredCheckpoint)
			}
			early = rec
			s, err = openStack()
		}
	}
	if !create && auto.IsSelectStack404Error(err) {
		known, _ := e.Stacks(ctx, p.Project)
		return nil, &UnknownStackError{Project: p.Project, Stack: p.Stack, Known: known}
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
	st = &Stack{stack: s, project: p.Project, name: p.Stack, backend: e.backend, policies: slices.Clone(p.Policies), version: p.Version, engine: e, early: early,
		config: p.Config, log: e.log.With("project", p.Project, "stack", p.Stack)}
	// Repair what a killed run may have left (stale lock, pending operations).
	rctx, rdone := e.stage(ctx, telemetry.StageRecover)
	_, err = st.Recover(rctx)
	if rdone(err); err != nil {
		return nil, err
	}
	return st, nil
}

// validate checks a program before it is opened: its names, plugins and
// policy pack directories.
func (e *Engine) validate(ctx context.Context, p Program) (err error) {
	ctx, done := e.stage(ctx, telemetry.StageValidate)
	defer func() { done(err) }()
	if err := p.Validate(); err != nil {
		return err
	}
	if slices.ContainsFunc(p.Plugins, func(pl Plugin) bool { return pl.Name == KubernetesPlugin.Name }) {
		if err := e.kubernetes(ctx); err != nil {
			return err
		}
	}
	if err := e.checkPlugins(p); err != nil {
		return err
	}
	for _, d := range p.Policies {
		if err := e.checkPolicyDir(d); err != nil {
			return err
		}
	}
	return nil
}

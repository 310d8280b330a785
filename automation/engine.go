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
	"encoding/json"
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
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"go.opentelemetry.io/otel"

	"github.com/slipwayhq/slipway/automation/fence"
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
		if err := privateDir(state); err != nil {
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
	cmd := newPulumiCLI(pl.Root, version)
	if c.fence != nil {
		if !pl.Patched {
			return nil, fmt.Errorf("automation: WithFence needs Slipway's patched pulumi build (v%s), which enforces the fence inside the engine; "+
				"the CLI is v%s from %s (%s): remove it from PATH or WithPulumi, or run `slipway toolchain build`",
				toolchain.PatchedPulumiVersion, pl.Version, pl.Source, pl.Bin())
		}
		c.env[fence.Env] = *c.fence
		cmd.group = true
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

// privateDir makes dir (and its missing parents) with mode 0700, and
// takes group and other access away from it when it already exists: a
// directory Slipway keeps state, workspaces or records in.
func privateDir(dir string) error {
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
	}
	if !e.pluginDownload {
		// Never download a plugin: a missing one is an error before the run.
		env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
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

// checkPlugins refuses a program whose plugins are not installed, unless
// the engine may download them.
func (e *Engine) checkPlugins(p Program) error {
	if e.pluginDownload {
		return nil
	}
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
	// Opening is an operation of its own unless an operation opens the stack.
	ctx, opc, end := e.begin(ctx)
	defer end()
	if err := e.validate(ctx, p); err != nil {
		return nil, err
	}
	wd := filepath.Join(e.dir, "workspaces", p.Project, p.Stack)
	if err := privateDir(wd); err != nil {
		return nil, err
	}
	openStack := func() (auto.Stack, error) {
		ws, err := e.stackWorkspace(ctx, p, wd)
		if err != nil {
			return auto.Stack{}, err
		}
		if create {
			return auto.UpsertStack(ctx, p.Stack, ws)
		}
		return auto.SelectStack(ctx, p.Stack, ws)
	}
	s, err := openStack()
	var early *recovery.Recovery
	if err != nil && strings.Contains(err.Error(), "failed to load checkpoint") {
		// A process killed while writing the checkpoint leaves it truncated;
		// the backend keeps the previous one as .bak.
		rec, rerr := e.restoreCheckpoint(ctx, opc, p.Project, p.Stack)
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
	if err := e.writeConfig(ctx, s, p, wd); err != nil {
		return nil, err
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

// stackWorkspace returns the workspace of a program's stack in wd, as
// auto.UpsertStackInlineSource makes it (the program inline, the project
// settings written when wd has none), except that selecting a stack the
// backend holds runs no CLI process (see stateWorkspace).
func (e *Engine) stackWorkspace(ctx context.Context, p Program, wd string) (auto.Workspace, error) {
	opts := append(e.workspaceOptions(wd), auto.Program(p.Run))
	if !hasProjectSettings(wd) {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("automation: workspace of %s/%s: %w", p.Project, p.Stack, err)
		}
		opts = append(opts, auto.Project(workspace.Project{Name: tokens.PackageName(p.Project),
			Runtime: workspace.NewProjectRuntimeInfo("go", nil), Main: cwd}))
	}
	ws, err := auto.NewLocalWorkspace(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("automation: workspace of %s/%s: %w", p.Project, p.Stack, err)
	}
	if !statestore.Supported(e.backend) {
		return ws, nil // the service's own workspace, as the Automation API makes it
	}
	return &stateWorkspace{Workspace: ws, e: e, project: p.Project}, nil
}

// hasProjectSettings reports whether a workspace directory has its
// Pulumi.yaml (or .yml, .json).
func hasProjectSettings(wd string) bool {
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		if _, err := os.Stat(filepath.Join(wd, "Pulumi"+ext)); err == nil {
			return true
		}
	}
	return false
}

// stateWorkspace is a stack's LocalWorkspace whose SelectStack asks the
// backend's store first: when the stack's checkpoint is there and loads
// (file and S3 backends), the stack exists, and the `pulumi stack select`
// process, which would only check that and remember it as the workspace's
// current stack, is skipped. Every command Slipway runs names its stack.
// Otherwise (no checkpoint, a broken one, or a backend without a driver)
// the CLI selects it: it refuses an unknown stack, and Engine.open repairs
// a broken checkpoint, as before.
type stateWorkspace struct {
	auto.Workspace
	e       *Engine
	project string
}

// SelectStack implements auto.Workspace.
func (w *stateWorkspace) SelectStack(ctx context.Context, stack string) error {
	opc, end := w.e.operationOf(ctx)
	defer end()
	if stackExists(ctx, opc, w.project, stack) {
		return nil
	}
	return w.Workspace.SelectStack(ctx, stack)
}

// StackOutputs implements auto.Workspace. The Automation API's Up reads
// the stack's outputs after every update with two CLI processes (`stack
// output --json`, and again with --show-secrets, which derives the
// passphrase's key); when the stack's checkpoint holds no secret output,
// both print exactly the root stack resource's outputs as the checkpoint
// stores them, so they are read from it. Secret outputs, or a checkpoint
// the store cannot give, go to the CLI as before.
func (w *stateWorkspace) StackOutputs(ctx context.Context, stack string) (auto.OutputMap, error) {
	opc, end := w.e.operationOf(ctx)
	defer end()
	if outs, ok := plainOutputs(ctx, opc, w.project, stack); ok {
		return outs, nil
	}
	return w.Workspace.StackOutputs(ctx, stack)
}

// plainOutputs returns the outputs of the stack's root resource from its
// checkpoint, and false when they hold a secret (or any other special
// value) or the checkpoint cannot be read.
func plainOutputs(ctx context.Context, opc *opContext, project, stack string) (auto.OutputMap, bool) {
	s, err := opc.state(ctx)
	if err != nil {
		return nil, false
	}
	if ok, err := s.Exists(ctx, project, stack); err != nil || !ok {
		return nil, false
	}
	cp, err := s.ReadCheckpoint(ctx, project, stack)
	if err != nil || cp.Broken() {
		return nil, false
	}
	d, err := cp.Deployment()
	if err != nil {
		return nil, false
	}
	var dep struct {
		Resources []struct {
			Type    string          `json:"type"`
			Parent  string          `json:"parent"`
			Outputs json.RawMessage `json:"outputs"`
		} `json:"resources"`
	}
	if len(d.Deployment) > 0 && json.Unmarshal(d.Deployment, &dep) != nil {
		return nil, false
	}
	out := auto.OutputMap{}
	for _, r := range dep.Resources {
		if r.Type != "pulumi:pulumi:Stack" || r.Parent != "" || len(r.Outputs) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(r.Outputs, &m); err != nil || !plainValue(m) {
			return nil, false
		}
		for k, v := range m {
			out[k] = auto.OutputValue{Value: v}
		}
	}
	return out, true
}

// plainValue reports whether a serialized property value is plain JSON,
// which the CLI prints as it is stored: no special value (secret, asset,
// archive, resource reference: an object with Pulumi's signature key) and
// no unknown (a sentinel string) anywhere in it.
func plainValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if _, special := v[sig.Key]; special {
			return false
		}
		for _, x := range v {
			if !plainValue(x) {
				return false
			}
		}
	case []any:
		for _, x := range v {
			if !plainValue(x) {
				return false
			}
		}
	case string:
		return !sig.IsUnknown(v)
	}
	return true
}

// stackExists reports whether the backend's store holds the stack's
// checkpoint in the project-scoped layout, and Pulumi can load it; false
// when it cannot tell.
func stackExists(ctx context.Context, opc *opContext, project, stack string) bool {
	s, err := opc.state(ctx)
	if err != nil {
		return false
	}
	if ok, err := s.Exists(ctx, project, stack); err != nil || !ok {
		return false
	}
	cp, err := s.ReadCheckpoint(ctx, project, stack)
	return err == nil && !cp.Broken()
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

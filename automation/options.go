package automation

import (
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/telemetry"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// EngineOption configures New.
type EngineOption func(*engine.Config)

// WithDir sets the directory the engine owns: workspaces and, by default, the
// file backend's state (default ".slipway" in the working directory).
func WithDir(dir string) EngineOption { return func(c *engine.Config) { c.Dir = dir } }

// WithBackend sets the Pulumi backend URL (file://, s3://, https://api.pulumi.com, ...).
// The default is $PULUMI_BACKEND_URL, as for the pulumi CLI, else a file
// backend in <dir>/state.
func WithBackend(url string) EngineOption { return func(c *engine.Config) { c.Backend = url } }

// WithPulumiHome sets PULUMI_HOME for the engine (plugins, credentials).
// The default is $PULUMI_HOME or ~/.pulumi.
func WithPulumiHome(dir string) EngineOption { return func(c *engine.Config) { c.PulumiHome = dir } }

// WithSecretsProvider sets the secrets provider of new stacks ("passphrase",
// "awskms://...", ...). The default is $PULUMI_SECRETS_PROVIDER, else
// "passphrase".
func WithSecretsProvider(p string) EngineOption { return func(c *engine.Config) { c.Secrets = p } }

// WithPassphrase sets the passphrase of the passphrase secrets provider. The
// default is $PULUMI_CONFIG_PASSPHRASE, else the contents of the file that
// $PULUMI_CONFIG_PASSPHRASE_FILE names (trimmed, as the pulumi CLI reads
// it). An empty passphrase is accepted for a local file backend; any other
// backend refuses it unless it is set explicitly (here, or as an empty
// PULUMI_CONFIG_PASSPHRASE).
func WithPassphrase(p string) EngineOption { return func(c *engine.Config) { c.Passphrase = &p } }

// WithLocalRecords accepts a backend that Slipway has no driver for
// (gs://, azblob://, Pulumi Cloud) although its records — release history
// (rollback's last known good), run history, approval requests and
// decisions, ephemeral tags — then live only in <dir>/releases on this
// machine: a rollback, a promotion's approval, GC or the dashboard on
// another machine does not see them. Without it New refuses such a backend.
func WithLocalRecords() EngineOption { return func(c *engine.Config) { c.LocalRecords = true } }

// WithEnv adds environment variables for every engine run.
func WithEnv(env map[string]string) EngineOption {
	return func(c *engine.Config) {
		for k, v := range env {
			c.Env[k] = v
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
func WithFence(path string) EngineOption { return func(c *engine.Config) { c.Fence = &path } }

// WithResolver sets the toolchain resolver (default toolchain.New()).
func WithResolver(r *toolchain.Resolver) EngineOption {
	return func(c *engine.Config) { c.Resolver = r }
}

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) EngineOption { return func(c *engine.Config) { c.Log = l } }

// WithPlugin provides the binary of a resource provider plugin that Slipway
// does not build, such as the AWS provider ("aws", toolchain.AWSProviderVersion,
// "/opt/pulumi/pulumi-resource-aws"). New installs it into PULUMI_HOME; the
// engine downloads no plugin unless WithPluginDownload is given.
func WithPlugin(name, version, path string) EngineOption {
	return func(c *engine.Config) {
		c.Plugins = append(c.Plugins, engine.PluginBinary{Name: name, Version: version, Path: path})
	}
}

// WithPluginDownload lets the engine download a resource plugin that is
// neither installed in PULUMI_HOME nor given with WithPlugin, from the
// plugin's publisher, as plain Pulumi does (CLI: --allow-plugin-download).
// Without it, which is the default, the engine never downloads anything: a
// program that lists a missing plugin is refused before the run with a
// *MissingPluginError, and the engine runs with automatic plugin
// acquisition disabled.
func WithPluginDownload() EngineOption { return func(c *engine.Config) { c.PluginDownload = true } }

// WithTracerProvider sets where the engine's spans go: one span per
// operation, a child per stage and one per resource step (see package
// telemetry). The default is otel.GetTracerProvider(), read when New runs;
// the engine never sets a global provider.
func WithTracerProvider(tp trace.TracerProvider) EngineOption {
	return func(c *engine.Config) { c.TracerProvider = tp }
}

// WithMetrics records every operation in m (see telemetry.NewMetrics).
// The default records no metrics.
func WithMetrics(m *telemetry.Metrics) EngineOption {
	return func(c *engine.Config) { c.Metrics = m }
}

// WithNotifier sends an event for each operation's outcome to n: run
// succeeded or failed, policy blocked, drift detected, rollback done. The
// engine calls n.Notify in the operation's goroutine, so n must return at
// once (a chatops.Dispatcher queues and delivers in the background); an
// error is logged and never fails the operation.
func WithNotifier(n chatops.Notifier) EngineOption {
	return func(c *engine.Config) { c.Notifier = n }
}

// WithRunHistory turns the run history on or off (default on): each
// operation writes a runs.Record beside the stack's state (see
// Engine.Store); a failed write is logged and never fails the operation.
func WithRunHistory(on bool) EngineOption {
	return func(c *engine.Config) { c.NoRuns = !on }
}

// WithAnalyzer sets the binary that serves Slipway policy packs to the engine
// (it must call policypacks/all.ServeIfAnalyzer first thing in main or
// TestMain). The default is the running executable.
func WithAnalyzer(path string) EngineOption { return func(c *engine.Config) { c.Analyzer = path } }

// WithForceUnlock lets recovery remove a stack lock whose owner cannot be
// proven dead (a lock of another host, or of a process /proc does not show).
// Give it only when you know no update of the stack runs anywhere (CLI:
// --force-unlock). Locks of owners proven dead are removed without it; a
// lock whose owner runs on this host is never removed.
func WithForceUnlock() EngineOption { return func(c *engine.Config) { c.ForceUnlock = true } }

// WithDeadHosts tells recovery that every process of these hosts is proven
// gone (for example a fleet runner whose Lease on the run expired), so
// locks taken there are removed. A lock taken on this host is still judged
// by its PID, whatever the list says.
func WithDeadHosts(hosts ...string) EngineOption {
	return func(c *engine.Config) { c.DeadHosts = append(c.DeadHosts, hosts...) }
}

// WithRepair lets recovery do what can lose track of a real resource:
// forget interrupted creates of resources that the next run does not adopt
// (anything but named Kubernetes objects), and replace a broken checkpoint
// of such a stack with its backup. Give it after checking the resources
// the refusal named (CLI: --repair).
func WithRepair() EngineOption { return func(c *engine.Config) { c.Repair = true } }

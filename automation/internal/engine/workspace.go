package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/encoding"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/slipwayhq/slipway/automation/telemetry"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// workspace returns a workspace of project, in its own directory, for
// backend-wide queries (listing stacks and their tags).
func (e *Engine) Workspace(ctx context.Context, project string) (auto.Workspace, error) {
	if !nameRE.MatchString(project) {
		return nil, fmt.Errorf("automation: project %q is invalid", project)
	}
	wd := filepath.Join(e.dir, "workspaces", project, ".project")
	if err := PrivateDir(wd); err != nil {
		return nil, err
	}
	// The queries of a project share this directory and run at the same
	// time (GC's destroys, ephemeral creates in parallel, other processes on
	// the same directory), each with pulumi processes that read Pulumi.yaml.
	// The Automation API's Project option would truncate and rewrite it for
	// every workspace, under those readers ("expected project to be an
	// object"): it is written only when it is not already what it should
	// be, whole, and renamed into place.
	if err := writeProjectSettings(wd, project); err != nil {
		return nil, fmt.Errorf("automation: workspace of project %s: %w", project, err)
	}
	return auto.NewLocalWorkspace(ctx, e.WorkspaceOptions(wd)...)
}

// writeProjectSettings makes wd's Pulumi.yaml that of an inline Go project
// named project: unless it already is, it is written atomically, so that a
// reader sees the old file or the whole new one.
func writeProjectSettings(wd, project string) error {
	b, err := encoding.YAML.Marshal(&workspace.Project{Name: tokens.PackageName(project), Runtime: workspace.NewProjectRuntimeInfo("go", nil)})
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(filepath.Join(wd, "Pulumi.yaml")); err == nil && bytes.Equal(old, b) {
		return nil
	}
	f, err := os.CreateTemp(wd, ".Pulumi.yaml-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Chmod(0o600), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(wd, "Pulumi.yaml"))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// kubernetes resolves the Kubernetes provider plugin into the engine's
// PULUMI_HOME (building it when missing), once per Engine; after a failure
// the next call tries again.
func (e *Engine) Kubernetes(ctx context.Context) error {
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

// engineEnv is the environment of every engine run.
func (e *Engine) Env() map[string]string {
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
func (e *Engine) WorkspaceOptions(workDir string) []auto.LocalWorkspaceOption {
	return []auto.LocalWorkspaceOption{auto.WorkDir(workDir), auto.Pulumi(e.cmd), auto.PulumiHome(e.pulumiHome),
		auto.EnvVars(e.Env()), auto.SecretsProvider(e.secrets)}
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
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return nil, err
	}
	return StackNames(ctx, ws, project)
}

// StackNames lists the stacks a project's workspace sees, sorted.
func StackNames(ctx context.Context, ws auto.Workspace, project string) ([]string, error) {
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

// validate checks a program before it is opened: its names, plugins and
// policy pack directories.
func (e *Engine) Validate(ctx context.Context, p Program) (err error) {
	ctx, done := e.Stage(ctx, telemetry.StageValidate)
	defer func() { done(err) }()
	if err := p.Validate(); err != nil {
		return err
	}
	if slices.ContainsFunc(p.Plugins, func(pl Plugin) bool { return pl.Name == KubernetesPlugin.Name }) {
		if err := e.Kubernetes(ctx); err != nil {
			return err
		}
	}
	if err := e.checkPlugins(p); err != nil {
		return err
	}
	for _, d := range p.Policies {
		if err := e.CheckPolicyDir(d); err != nil {
			return err
		}
	}
	return nil
}

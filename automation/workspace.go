// This file is the core's workspace and stack plumbing: the environment
// and workspaces of engine runs, opening a program's stack, and what the
// backend's store answers without a pulumi process. Lifecycle features
// (release.go, promote.go, ephemeral.go, drift.go, recover.go) use it.

package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/encoding"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
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

func (e *Engine) open(ctx context.Context, p Program, create bool) (st *Stack, err error) {
	ctx, done := e.Stage(ctx, telemetry.StageOpen)
	defer func() { done(err) }()
	// Opening is an operation of its own unless an operation opens the stack.
	ctx, opc, end := e.Begin(ctx)
	defer end()
	if err := e.Validate(ctx, p); err != nil {
		return nil, err
	}
	wd := filepath.Join(e.dir, "workspaces", p.Project, p.Stack)
	if err := PrivateDir(wd); err != nil {
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
	if err := e.WriteConfig(ctx, s, p, wd); err != nil {
		return nil, err
	}
	st = &Stack{stack: s, project: p.Project, name: p.Stack, backend: e.backend, policies: slices.Clone(p.Policies), version: p.Version, engine: e, early: early,
		config: p.Config, log: e.log.With("project", p.Project, "stack", p.Stack)}
	// Repair what a killed run may have left (stale lock, pending operations).
	rctx, rdone := e.Stage(ctx, telemetry.StageRecover)
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
	opts := append(e.WorkspaceOptions(wd), auto.Program(p.Run))
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
	opc, end := w.e.OperationOf(ctx)
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
	opc, end := w.e.OperationOf(ctx)
	defer end()
	if outs, ok := plainOutputs(ctx, opc, w.project, stack); ok {
		return outs, nil
	}
	return w.Workspace.StackOutputs(ctx, stack)
}

// plainOutputs returns the outputs of the stack's root resource from its
// checkpoint, and false when they hold a secret (or any other special
// value) or the checkpoint cannot be read.
func plainOutputs(ctx context.Context, opc *Operation, project, stack string) (auto.OutputMap, bool) {
	s, ok := opc.Holding(ctx, project, stack)
	if !ok {
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
func stackExists(ctx context.Context, opc *Operation, project, stack string) bool {
	s, ok := opc.Holding(ctx, project, stack)
	if !ok {
		return false
	}
	cp, err := s.ReadCheckpoint(ctx, project, stack)
	return err == nil && !cp.Broken()
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

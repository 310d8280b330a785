package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/passkey"
	"github.com/slipwayhq/slipway/automation/internal/stackhistory"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// UpsertStack opens the program's stack in its own workspace, creating it
// when the backend does not hold it yet, and writes its configuration. Only
// operations that may create an environment (preview, up, deploy,
// ephemeral create) use it; every other operation uses SelectStack.
func Upsert(ctx context.Context, e *engine.Engine, p engine.Program) (*Stack, error) {
	return open(ctx, e, p, true)
}

// SelectStack opens the program's stack, which must already exist: an
// unknown stack is refused with an *UnknownStackError listing the stacks the
// backend holds, and nothing is created.
func Select(ctx context.Context, e *engine.Engine, p engine.Program) (*Stack, error) {
	return open(ctx, e, p, false)
}

func open(ctx context.Context, e *engine.Engine, p engine.Program, create bool) (st *Stack, err error) {
	ctx, done := e.Stage(ctx, telemetry.StageOpen)
	defer func() { done(err) }()
	// Opening is an operation of its own unless an operation opens the stack.
	ctx, opc, end := e.Begin(ctx)
	defer end()
	if err := e.Validate(ctx, p); err != nil {
		return nil, err
	}
	wd := filepath.Join(e.Dir(), "workspaces", p.Project, p.Stack)
	if err := engine.PrivateDir(wd); err != nil {
		return nil, err
	}
	openStack := func() (auto.Stack, error) {
		ws, err := stackWorkspace(ctx, e, p, wd)
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
		rec, rerr := restoreCheckpoint(ctx, e, opc, p.Project, p.Stack)
		switch {
		case rerr != nil:
			err = errors.Join(err, rerr)
		default:
			// Restored from the backup, or rewritten meanwhile by its writer: read it again.
			if rec.RestoredCheckpoint != "" {
				e.Logger().WarnContext(ctx, "restored a truncated checkpoint from its backup", "stack", p.Stack, "corrupt", rec.RestoredCheckpoint)
			}
			early = rec
			s, err = openStack()
		}
	}
	if !create && auto.IsSelectStack404Error(err) {
		known, _ := e.Stacks(ctx, p.Project)
		return nil, &engine.UnknownStackError{Project: p.Project, Stack: p.Stack, Known: known}
	}
	if err != nil {
		return nil, fmt.Errorf("automation: stack %s/%s: %w", p.Project, p.Stack, err)
	}
	if err := e.WriteConfig(ctx, s, p, wd); err != nil {
		return nil, err
	}
	st = &Stack{stack: s, project: p.Project, name: p.Stack, backend: e.Backend(), policies: slices.Clone(p.Policies), version: p.Version, engine: e, early: early,
		config: p.Config, log: e.Logger().With("project", p.Project, "stack", p.Stack)}
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
func stackWorkspace(ctx context.Context, e *engine.Engine, p engine.Program, wd string) (auto.Workspace, error) {
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
	if !statestore.Supported(e.Backend()) {
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
	e       *engine.Engine
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

// PulumiCommand implements auto.Workspace: the workspace's CLI, except
// that `stack history --json`, which the Automation API runs after every
// up, refresh and destroy to fill in the result's summary (a process of
// about half a second), is answered from the backend's store when it holds
// the stack (see package stackhistory). A history request that needs a
// secret configuration value decrypted, or that the store cannot answer,
// still runs the CLI. Engine runs (preview, up, refresh, destroy, import)
// get the passphrase provider's key the Engine derived for the stack (see
// package passkey) instead of deriving it again in every process.
func (w *stateWorkspace) PulumiCommand() auto.PulumiCommand {
	cmd := stackhistory.Command{PulumiCommand: w.Workspace.PulumiCommand(), Read: w.history}
	return passkey.Command{PulumiCommand: cmd, Key: func(stack string) (string, bool) {
		return w.e.PassphraseKey(w.WorkDir(), stack)
	}}
}

// history reads a stack's update history from the backend's store
// (stackhistory.Reader).
func (w *stateWorkspace) history(ctx context.Context, stack string, pageSize, page int) ([][]byte, bool) {
	opc, end := w.e.OperationOf(ctx)
	defer end()
	s, ok := opc.Holding(ctx, w.project, stack)
	if !ok {
		return nil, false
	}
	entries, err := s.UpdateHistory(ctx, w.project, stack, pageSize, page)
	return entries, err == nil
}

// plainOutputs returns the outputs of the stack's root resource from its
// checkpoint, and false when they hold a secret (or any other special
// value) or the checkpoint cannot be read.
func plainOutputs(ctx context.Context, opc *engine.Operation, project, stack string) (auto.OutputMap, bool) {
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
func stackExists(ctx context.Context, opc *engine.Operation, project, stack string) bool {
	s, ok := opc.Holding(ctx, project, stack)
	if !ok {
		return false
	}
	cp, err := s.ReadCheckpoint(ctx, project, stack)
	return err == nil && !cp.Broken()
}

package automation

import (
	"context"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/recovery"
)

// Stack is one environment's stack, ready for engine operations. Get one
// from Engine.UpsertStack or Engine.SelectStack.
type Stack struct{ s *stack.Stack }

// wrap returns the Stack of an opened stack.
func wrap(s *stack.Stack, err error) (*Stack, error) {
	if err != nil {
		return nil, err
	}
	return &Stack{s: s}, nil
}

// Name returns the stack name.
func (s *Stack) Name() string { return s.s.Name() }

// Auto returns the underlying Automation API stack, for what Slipway does not wrap.
// On a file or S3 backend its Workspace is Slipway's wrapper of the
// stack's LocalWorkspace (its SelectStack and StackOutputs read the
// backend's store when they can), not a *auto.LocalWorkspace.
func (s *Stack) Auto() *auto.Stack { return s.s.Auto() }

// Policies returns the policy pack directories enforced on every preview and
// up of the stack (the program's Policies).
func (s *Stack) Policies() []string { return s.s.Policies() }

// Preview computes the changes an Up would make.
func (s *Stack) Preview(ctx context.Context, opts ...optpreview.Option) (*outcome.Result, error) {
	return s.s.Preview(ctx, opts...)
}

// Up applies the program and records the release in the stack's release
// history. With policies (the program's or optup.Policies), it previews
// with them first and applies nothing when they block.
func (s *Stack) Up(ctx context.Context, opts ...optup.Option) (*outcome.Result, error) {
	return s.s.Up(ctx, opts...)
}

// Refresh reads the live state of every resource into the stack state. With
// optrefresh.ExpectNoChanges it compares first (writing nothing) and returns a
// *ChangesFoundError when live state differs.
func (s *Stack) Refresh(ctx context.Context, opts ...optrefresh.Option) (*outcome.Result, error) {
	return s.s.Refresh(ctx, opts...)
}

// Destroy deletes every resource of the stack (and, with
// optdestroy.RemoveStack, the stack itself).
func (s *Stack) Destroy(ctx context.Context, opts ...optdestroy.Option) (*outcome.Result, error) {
	return s.s.Destroy(ctx, opts...)
}

// Outputs returns the stack's outputs, secrets as plain values.
func (s *Stack) Outputs(ctx context.Context) (map[string]any, error) { return s.s.Outputs(ctx) }

// Recover repairs what an interrupted update (a killed process) leaves
// behind, so the next operation can proceed, and reports it (see also
// LastRecovery). It never guesses:
//
//   - Locks (file and S3 backends): a lock is removed only when its owner is
//     proven dead: same hostname and the PID does not exist, is a zombie, or
//     belongs to a process that started after the lock was taken. A lock
//     whose owner runs is kept (the operation then fails as a concurrent
//     update). A lock whose liveness cannot be proven (another host, /proc
//     unreadable) is kept and Recover returns a *statestore.StackLockedError, unless
//     WithForceUnlock was given.
//   - A checkpoint Pulumi cannot load is repaired under the stack's lock.
//     When only its metadata is broken (the file backend's .attrs sidecar,
//     left empty by a kill), its content is written again: nothing is lost.
//     When its content is broken, its backup (the previous checkpoint)
//     replaces it if every resource in the backup is one the next run
//     adopts (Kubernetes objects and providers); otherwise only with
//     WithRepair, else a *recovery.RepairRequiredError. A kill mid-write can only
//     lose the begin of a step that had not run yet, or the end of one the
//     backup records as pending, which the next rule handles.
//   - Pending operations: interrupted creates of named Kubernetes objects
//     (server-side apply adopts them again) and of providers and components
//     (which make no object) are cleared by a refresh that takes the stack's
//     lock. An interrupted create of anything else (a VPC, a bucket, a
//     custom resource type) may have made a real resource, so Recover
//     returns a *recovery.RepairRequiredError naming it and clears nothing, unless
//     WithRepair was given.
func (s *Stack) Recover(ctx context.Context) (*recovery.Recovery, error) { return s.s.Recover(ctx) }

// LastRecovery returns the report of the stack's last Recover (run when the
// stack is opened and before every retry), or nil when none ran.
func (s *Stack) LastRecovery() *recovery.Recovery { return s.s.LastRecovery() }

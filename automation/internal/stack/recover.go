package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/statestore"
)

func (s *Stack) setRecovery(r *recovery.Recovery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recovery = r
}

// LastRecovery returns the report of the stack's last Recover (run when the
// stack is opened and before every retry), or nil when none ran.
func (s *Stack) LastRecovery() *recovery.Recovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovery
}

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
//     lock and reads only the resources the operations name (see
//     refreshPending). An interrupted create of anything else (a VPC, a bucket, a
//     custom resource type) may have made a real resource, so Recover
//     returns a *recovery.RepairRequiredError naming it and clears nothing, unless
//     WithRepair was given.
func (s *Stack) Recover(ctx context.Context) (*recovery.Recovery, error) {
	rec := &recovery.Recovery{}
	s.mu.Lock()
	if s.early != nil {
		// What Engine.open repaired before the stack could be opened.
		rec.Merge(s.early)
		s.early = nil
	}
	s.recovery = rec
	s.mu.Unlock()
	unlock, repair := s.engine.RecoveryFlags()
	opc, end := s.Operation(ctx)
	defer end()
	store, err := opc.State(ctx)
	switch {
	case errors.Is(err, statestore.ErrUnsupported):
		store = nil // the service manages locks and checkpoints
	case err != nil:
		return rec, fmt.Errorf("automation: opening backend %s for recovery: %w", mask.URL(s.backend), err)
	default:
		held, err := recovery.RemoveStaleLocks(ctx, store, s.project, s.name, unlock, rec)
		if err != nil || held {
			// A live update owns the stack and whatever is pending in it.
			return rec, err
		}
		restored, fromBackup, err := recovery.RestoreCheckpoint(ctx, store, s.project, s.name, repair, s.engine.Logger())
		if err != nil {
			return rec, err
		}
		if restored != "" {
			rec.RestoredCheckpoint, rec.CheckpointFromBackup = restored, fromBackup
		}
	}
	deployment, live, err := s.deployment(ctx, store)
	if err != nil || live {
		return rec, err
	}
	pending, err := recovery.PendingOperations(deployment)
	if err != nil {
		return rec, fmt.Errorf("automation: state of %s is not valid: %w", s.name, err)
	}
	rec.PendingOperations = pending
	var blocked []recovery.PendingOperation
	for _, p := range pending {
		if !p.Adoptable {
			blocked = append(blocked, p)
		}
	}
	if len(blocked) > 0 && !repair {
		return rec, &recovery.RepairRequiredError{Project: s.project, Stack: s.name, Pending: blocked}
	}
	if len(pending) > 0 {
		if err := s.refreshPending(ctx, deployment, rec); err != nil {
			return rec, err
		}
	}
	if rec.Repaired() && s.log != nil {
		s.log.WarnContext(ctx, "recovered an interrupted update", "staleLocks", len(rec.StaleLocks), "pending", len(rec.PendingOperations),
			"restoredCheckpoint", rec.RestoredCheckpoint)
	}
	return rec, nil
}

// refreshPending reconciles the pending operations rec lists with a
// refresh that clears the pending creates and reads only the resources the
// operations name (recovery.RefreshTargets), not the whole stack: at 1,000
// resources that is seconds instead of most of a minute. It records the
// targets and the resources the engine read in rec.
func (s *Stack) refreshPending(ctx context.Context, deployment json.RawMessage, rec *recovery.Recovery) error {
	targets, err := recovery.RefreshTargets(deployment)
	if err != nil {
		return fmt.Errorf("automation: state of %s is not valid: %w", s.name, err)
	}
	rec.RefreshTargets = targets
	var read []string
	col := outcome.NewCollector(func(ev events.EngineEvent) {
		if p := ev.ResourcePreEvent; p != nil && p.Metadata.Op == apitype.OpRefresh {
			read = append(read, p.Metadata.URN)
		}
	})
	opts := []optrefresh.Option{optrefresh.ClearPendingCreates(), optrefresh.ShowSecrets(false), optrefresh.EventStreams(col.Events())}
	if len(targets) > 0 {
		opts = append(opts, optrefresh.Target(targets))
	}
	start := time.Now()
	_, err = s.stack.Refresh(ctx, opts...)
	// Once the collector's Result returned, it hands on no more events.
	col.Result("refresh", s.project, s.name, start, nil)
	rec.RefreshedResources = read
	if auto.IsConcurrentUpdateError(err) {
		// The operations belong to an update that started meanwhile.
		return nil
	}
	if err != nil {
		return fmt.Errorf("automation: reconciling %d pending operation(s) of %s: %w", len(rec.PendingOperations), s.name, err)
	}
	rec.Refreshed = true
	return nil
}

// Operation returns the operation context ctx is in, or a fresh one that
// end closes (outside any operation, or for a stack opened without an
// engine).
func (s *Stack) Operation(ctx context.Context) (opc *engine.Operation, end func()) {
	if s.engine == nil {
		opc = engine.OperationOn(s.backend)
		return opc, opc.Close
	}
	return s.engine.OperationOf(ctx)
}

// deployment returns the stack's current deployment for Recover, and
// live=true when a live update holds the stack (then there is nothing to
// recover). With a store (file and S3 backends) it reads the checkpoint
// Recover just checked, directly: no CLI process, no decryption of
// secrets. Otherwise, or when the checkpoint changed meanwhile into one
// that does not load, it asks the engine (`pulumi stack export`).
func (s *Stack) deployment(ctx context.Context, store *statestore.Store) (deployment []byte, live bool, err error) {
	if store != nil {
		cp, err := store.ReadCheckpoint(ctx, s.project, s.name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Not in the project-scoped or legacy layout: let the engine say.
		case err != nil:
			return nil, false, fmt.Errorf("automation: reading state of %s: %w", s.name, err)
		case !cp.Broken():
			d, err := cp.Deployment()
			if err != nil {
				return nil, false, fmt.Errorf("automation: state of %s is not valid: %w", s.name, err)
			}
			return d.Deployment, false, nil
		}
	}
	dep, err := s.stack.Export(ctx)
	if auto.IsConcurrentUpdateError(err) {
		return nil, true, nil // a live update holds the stack: nothing to recover
	}
	if err != nil {
		return nil, false, fmt.Errorf("automation: reading state of %s: %w", s.name, err)
	}
	return dep.Deployment, false, nil
}

// restoreCheckpoint is Engine.open's repair when the stack cannot be opened
// because its checkpoint does not load: stale locks of its killed writer
// are removed, then the checkpoint is restored as Recover would. The
// Recover that follows the open reports what it did. While a live owner
// holds the stack's lock it restores nothing and returns a
// *statestore.StackLockedError naming the lock.
func restoreCheckpoint(ctx context.Context, e *engine.Engine, opc *engine.Operation, project, stack string) (*recovery.Recovery, error) {
	rec := &recovery.Recovery{}
	store, err := opc.State(ctx)
	if errors.Is(err, statestore.ErrUnsupported) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("automation: opening backend %s for recovery: %w", mask.URL(e.Backend()), err)
	}
	unlock, repair := e.RecoveryFlags()
	held, err := recovery.RemoveStaleLocks(ctx, store, project, stack, unlock, rec)
	if err == nil && held {
		// A running update holds the stack and is writing its checkpoint:
		// the stack is locked, not broken.
		return rec, &statestore.StackLockedError{Project: project, Stack: stack, Locks: rec.HeldLocks}
	}
	if err == nil {
		rec.RestoredCheckpoint, rec.CheckpointFromBackup, err = recovery.RestoreCheckpoint(ctx, store, project, stack, repair, e.Logger())
	}
	return rec, err
}

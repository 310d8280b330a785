// Package recovery holds what Slipway's recovery decides without running
// the engine: which locks on a stack are stale (their owners proven dead),
// when a broken checkpoint may be replaced by its backup, which interrupted
// operations in a deployment are safe to forget, and the reports and errors
// that say so (Recovery, PendingOperation, RepairRequiredError; a kept
// lock is statestore's *StackLockedError).
//
// Package automation's Stack.Recover drives it, and re-exports its types
// under their old names.
package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation/statestore"
)

// PendingOperation is an operation an interrupted update began and never
// finished, as recorded in the stack's state.
type PendingOperation struct {
	// Op is the engine operation: creating, updating, deleting, reading, importing.
	Op   string `json:"op"`
	URN  string `json:"urn"`
	Type string `json:"type"`
	// Adoptable is set when forgetting the operation cannot lose track of a
	// real resource (see Recover).
	Adoptable bool `json:"adoptable"`
	// Reason explains Adoptable.
	Reason string `json:"reason"`
}

// Recovery reports what Recover found and repaired.
type Recovery struct {
	// StaleLocks are the locks that were removed: their owners were proven
	// dead, or (Forced) WithForceUnlock was given.
	StaleLocks []statestore.LockInfo `json:"staleLocks,omitempty"`
	// HeldLocks are the locks that were kept: the owner runs, or its
	// liveness cannot be proven.
	HeldLocks []statestore.LockInfo `json:"heldLocks,omitempty"`
	// PendingOperations are the interrupted operations found in the state.
	PendingOperations []PendingOperation `json:"pendingOperations,omitempty"`
	// Refreshed is set when a refresh reconciled them and cleared the
	// pending creates.
	Refreshed bool `json:"refreshed"`
	// RefreshTargets are the resources that refresh was limited to (see
	// RefreshTargets), and RefreshedResources those the engine's refresh
	// stepped through, as its events report them (a component or a provider
	// is stepped through without a read).
	RefreshTargets     []string `json:"refreshTargets,omitempty"`
	RefreshedResources []string `json:"refreshedResources,omitempty"`
	// RestoredCheckpoint is where a checkpoint Pulumi could not load was
	// kept after it was repaired: replaced by the backend's backup (the
	// previous checkpoint) when CheckpointFromBackup, else written again
	// with the same content because only its metadata sidecar was broken.
	RestoredCheckpoint   string `json:"restoredCheckpoint,omitempty"`
	CheckpointFromBackup bool   `json:"checkpointFromBackup,omitempty"`
}

// Repaired reports whether anything was repaired.
func (r *Recovery) Repaired() bool {
	return len(r.StaleLocks) > 0 || r.Refreshed || r.RestoredCheckpoint != ""
}

// Merge adds what an earlier recovery (o, may be nil) repaired to r: its
// removed locks, and its restored checkpoint when r restored none.
func (r *Recovery) Merge(o *Recovery) {
	if o == nil {
		return
	}
	r.StaleLocks = append(r.StaleLocks, o.StaleLocks...)
	if r.RestoredCheckpoint == "" {
		r.RestoredCheckpoint, r.CheckpointFromBackup = o.RestoredCheckpoint, o.CheckpointFromBackup
	}
}

// RepairRequiredError says recovery found state it does not repair on its
// own because that could orphan or duplicate a real resource.
type RepairRequiredError struct {
	Project, Stack string
	// Pending are interrupted creates of resources the next run would not adopt.
	Pending []PendingOperation
	// Checkpoint is the broken checkpoint whose backup holds such resources.
	Checkpoint string
	// Types are the resource types that make restoring the backup unsafe.
	Types []string
}

// Error names what needs repair and how to allow it.
func (e *RepairRequiredError) Error() string {
	var what []string
	for _, p := range e.Pending {
		what = append(what, fmt.Sprintf("%s %s (%s)", p.Op, p.URN, p.Reason))
	}
	msg := fmt.Sprintf("automation: stack %s/%s needs a repair Slipway will not make on its own: ", e.Project, e.Stack)
	if e.Checkpoint != "" {
		msg += fmt.Sprintf("checkpoint %s is broken, and its backup (the previous checkpoint) holds resources a restore could lose track of (%s); ",
			e.Checkpoint, strings.Join(e.Types, ", "))
	}
	if len(what) > 0 {
		msg += fmt.Sprintf("an interrupted update left %d pending create(s) of resources the next run would not adopt: %s; ",
			len(what), strings.Join(what, "; "))
	}
	return msg + "check in the cloud whether each exists (import it, or delete it), then rerun with --repair (library: automation.WithRepair())"
}

// IsRepairRequired reports whether err is (or wraps) a *RepairRequiredError.
func IsRepairRequired(err error) bool {
	var r *RepairRequiredError
	return errors.As(err, &r)
}

// Unlock is what a caller proves or permits about locks whose owner's
// liveness this host cannot judge (another host's).
type Unlock struct {
	// Force removes such locks (the caller knows no update runs).
	Force bool
	// DeadHosts are hosts whose every process the caller proved gone
	// (a fleet runner whose Lease expired): their locks are removed. A
	// lock of this host is still judged by its PID.
	DeadHosts []string
}

// RemoveStaleLocks removes the stack's locks whose owners are proven dead
// (by this host, or by u.DeadHosts) or, with u.Force, whose liveness is
// unknown, and reports them and the rest in rec. It returns held=true when
// a lock remains whose owner runs, and a *statestore.StackLockedError when one
// remains whose liveness is unknown.
func RemoveStaleLocks(ctx context.Context, store *statestore.Store, project, stack string, u Unlock, rec *Recovery) (held bool, err error) {
	locks, err := store.Locks(ctx, project, stack)
	if err != nil {
		return false, fmt.Errorf("automation: listing the locks of %s/%s: %w", project, stack, err)
	}
	var unknown []statestore.LockInfo
	for _, l := range locks {
		info := store.Info(l)
		if info.Liveness == statestore.Unknown.String() && l.Hostname != "" && slices.Contains(u.DeadHosts, l.Hostname) {
			info.Liveness, info.Reason = statestore.Dead.String(), "its host "+l.Hostname+" was proven gone by the caller (an expired lease)"
		}
		unknownLive := info.Liveness == statestore.Unknown.String()
		remove := info.Liveness == statestore.Dead.String() || (unknownLive && u.Force)
		if !remove {
			rec.HeldLocks = append(rec.HeldLocks, info)
			if unknownLive {
				unknown = append(unknown, info)
			}
			continue
		}
		if err := store.RemoveLock(ctx, l.Key); err != nil {
			return false, fmt.Errorf("automation: removing stale lock %s: %w", info.Location, err)
		}
		info.Forced = unknownLive
		rec.StaleLocks = append(rec.StaleLocks, info)
	}
	if len(unknown) > 0 {
		return true, &statestore.StackLockedError{Project: project, Stack: stack, Locks: unknown}
	}
	return len(rec.HeldLocks) > 0, nil
}

// RestoreCheckpoint repairs a checkpoint Pulumi cannot load when that is
// safe or repair is set, holding the stack's lock while it does: when only
// its metadata is broken it is written again; when its content is broken,
// its backup replaces it if every resource the backup (and the readable
// part of the broken checkpoint) names is one the next run adopts, else a
// *RepairRequiredError says so. It returns where the broken checkpoint was
// kept, or "" when the checkpoint is not broken (or the stack has none),
// and whether the backup replaced it. log (may be nil) gets a warning for
// each repair.
func RestoreCheckpoint(ctx context.Context, store *statestore.Store, project, stack string, repair bool, log *slog.Logger) (string, bool, error) {
	cp, err := store.ReadCheckpoint(ctx, project, stack)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("automation: reading the checkpoint of %s/%s: %w", project, stack, err)
	}
	if !cp.Broken() {
		return "", false, nil
	}
	if _, jerr := cp.JSON(); jerr != nil && !repair {
		if bak, err := store.ReadBackup(ctx, cp); err == nil {
			if bj, err := bak.JSON(); err == nil {
				if risky := unsafeToRestore(bj, cp.Data); len(risky) > 0 {
					return "", false, &RepairRequiredError{Project: project, Stack: stack, Checkpoint: store.Location(cp.Key), Types: risky}
				}
			}
		}
	}
	unlock, err := store.Lock(ctx, project, stack)
	if err != nil {
		return "", false, fmt.Errorf("automation: checkpoint of %s/%s is broken, but the stack's lock could not be taken to restore it: %w", project, stack, err)
	}
	kept, fromBackup, err := store.RestoreCheckpoint(ctx, project, stack)
	if uerr := unlock(ctx); uerr != nil {
		err = errors.Join(err, fmt.Errorf("automation: releasing the recovery lock of %s/%s: %w", project, stack, uerr))
	}
	if err != nil {
		return "", false, fmt.Errorf("automation: restoring the checkpoint of %s/%s: %w", project, stack, err)
	}
	if kept == "" {
		return "", false, nil // rewritten meanwhile by its writer
	}
	if log != nil {
		log.Warn("repaired a broken checkpoint", "project", project, "stack", stack, "kept", store.Location(kept), "fromBackup", fromBackup)
	}
	return store.Location(kept), fromBackup, nil
}

// deploymentState is the part of a deployment (v3) recovery reads.
type deploymentState struct {
	Resources         []resourceState `json:"resources"`
	PendingOperations []struct {
		Resource resourceState `json:"resource"`
		Type     string        `json:"type"`
	} `json:"pending_operations"`
}

// resourceState is the part of a deployment's resource recovery reads.
type resourceState struct {
	URN    string          `json:"urn"`
	Custom bool            `json:"custom"`
	Type   string          `json:"type"`
	Inputs json.RawMessage `json:"inputs"`
}

// PendingOperations lists the pending operations of an exported deployment
// (its Deployment field, v3) and whether each is adoptable: forgetting it
// cannot lose track of a real resource.
func PendingOperations(deployment json.RawMessage) ([]PendingOperation, error) {
	if len(deployment) == 0 {
		return nil, nil
	}
	var d deploymentState
	if err := json.Unmarshal(deployment, &d); err != nil {
		return nil, err
	}
	var out []PendingOperation
	for _, op := range d.PendingOperations {
		p := PendingOperation{Op: op.Type, URN: op.Resource.URN, Type: op.Resource.Type}
		if op.Type != "creating" {
			// The resource stays in the state; the refresh reconciles it.
			p.Adoptable, p.Reason = true, "the resource stays in the state and is refreshed"
		} else {
			p.Adoptable, p.Reason = adoptable(op.Resource)
		}
		out = append(out, p)
	}
	return out, nil
}

// adoptable reports whether forgetting an interrupted create of r cannot
// lose track of a real resource, and why.
func adoptable(r resourceState) (bool, string) {
	switch {
	case !r.Custom:
		return true, "a component makes no object of its own"
	case strings.HasPrefix(r.Type, "pulumi:providers:"):
		return true, "a provider is configuration only"
	case strings.HasPrefix(r.Type, "kubernetes:helm.sh/"):
		return false, "a Helm release is not adopted by server-side apply"
	case strings.HasPrefix(r.Type, "kubernetes:"):
		if autonamed(r.Inputs) {
			return false, "its name was generated (pulumi.com/autonamed), so the next run would create another object"
		}
		return true, "server-side apply adopts the object of the same name"
	}
	return false, "Slipway cannot tell whether the interrupted create made a " + r.Type + "; forgetting it could orphan it"
}

// autonamed reports whether Kubernetes inputs carry the annotation the
// provider sets on names it generated.
func autonamed(inputs json.RawMessage) bool {
	var in struct {
		Metadata struct {
			Annotations map[string]any `json:"annotations"`
		} `json:"metadata"`
	}
	if len(inputs) == 0 || json.Unmarshal(inputs, &in) != nil {
		return false
	}
	return fmt.Sprint(in.Metadata.Annotations["pulumi.com/autonamed"]) == "true"
}

// kubernetesOnly reports whether a type is one whose objects the next run
// adopts, for the checkpoint-restore rule: Kubernetes objects (not Helm
// releases), Kubernetes providers and the stack itself.
func kubernetesOnly(t string) bool {
	return (strings.HasPrefix(t, "kubernetes:") && !strings.HasPrefix(t, "kubernetes:helm.sh/")) ||
		t == "pulumi:providers:kubernetes" || t == "pulumi:pulumi:Stack"
}

var urnRE = regexp.MustCompile(`"urn"\s*:\s*"(urn:pulumi:[^"]*)"`)

// unsafeToRestore returns the resource types that make replacing a broken
// checkpoint with its backup unsafe without WithRepair: every custom
// resource of the backup, and every resource named in the readable part of
// the broken checkpoint, must be adoptable (kubernetesOnly).
func unsafeToRestore(backup, broken []byte) []string {
	known := map[string]bool{} // type → custom
	var v struct {
		Checkpoint struct {
			Latest deploymentState `json:"latest"`
		} `json:"checkpoint"`
	}
	risky := map[string]bool{}
	if err := json.Unmarshal(backup, &v); err != nil {
		risky["(backup unreadable)"] = true
	}
	for _, r := range v.Checkpoint.Latest.Resources {
		known[r.Type] = known[r.Type] || r.Custom
		if r.Custom && !kubernetesOnly(r.Type) {
			risky[r.Type] = true
		}
	}
	for _, m := range urnRE.FindAllSubmatch(broken, -1) {
		t := urnType(string(m[1]))
		custom, seen := known[t]
		if (!seen || custom) && !kubernetesOnly(t) {
			risky[t] = true
		}
	}
	out := make([]string, 0, len(risky))
	for t := range risky {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// urnType returns the resource type of a URN
// (urn:pulumi:stack::project::parent$type::name).
func urnType(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return urn
	}
	q := parts[2]
	if i := strings.LastIndexByte(q, '$'); i >= 0 {
		q = q[i+1:]
	}
	return q
}

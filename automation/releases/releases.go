// Package releases keeps the release history of stacks in a state store,
// beside each stack's state (.pulumi/slipway/releases/<project>/<stack>/):
// the records and their statuses, which releases are good, which one a
// rollback restores, and pruning the history to its bound.
//
// Package automation's Deploy, Rollback and Up write and read it, and
// re-export Record as automation.Record.
package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/statestore"
)

// Release statuses. Applied, Verified and Restored releases are good:
// a rollback may restore them.
const (
	// Applied: a successful up (no smoke check ran).
	Applied = "applied"
	// Verified: Deploy applied it and its smoke check passed.
	Verified = "verified"
	// Restored: a rollback applied it again.
	Restored = "restored"
	// Failed: Deploy's up or smoke check failed, or a rollback to it failed.
	Failed = "failed"
	// RolledBack: it was good until a rollback replaced it.
	RolledBack = "rolled-back"
)

// MaxKept bounds the history kept per stack; older records and their
// checkpoints are removed (never the newest good one).
const MaxKept = 50

// Record is one release of a stack, kept in the backend beside the
// stack's state (.pulumi/slipway/releases/<project>/<stack>/), so any engine
// on the same backend sees it. Backends without a driver (Pulumi Cloud,
// gs://, azblob://) keep it in the engine's directory instead.
type Record struct {
	// ID orders the records: a later release has a greater ID.
	ID      string `json:"id"`
	Project string `json:"project"`
	Stack   string `json:"stack"`
	// Version is the program's Version; a lookup function rebuilds the
	// program from it.
	Version string `json:"version"`
	// Status is one of the Release* constants.
	Status   string    `json:"status"`
	Recorded time.Time `json:"recorded"`
	// Update identifies the stack update that applied the release: its
	// start time as the stack history reports it ("" when unknown).
	Update string `json:"update,omitempty"`
	// Checkpoint locates the stack's exported checkpoint kept with the
	// release (a path or an s3:// URL); secrets in it stay encrypted.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Cause says why the release failed, or what a rollback restored it from.
	Cause string `json:"cause,omitempty"`
	// Revision is the source revision the release applied (e.g. the Git
	// commit of a fleet Environment's parameters), when the up named one.
	Revision string `json:"revision,omitempty"`
	// CommitTime is the time of that commit, when the up named it
	// (optup.CommitTime): the lead time of a change runs from it to Recorded.
	CommitTime time.Time `json:"commitTime,omitzero"`
}

// Good reports whether the release can be restored: it was applied
// successfully, and it has a version to rebuild the program from.
func (r Record) Good() bool {
	return r.Version != "" && (r.Status == Applied || r.Status == Verified || r.Status == Restored)
}

// List returns the release history of a stack in s, oldest first.
func List(ctx context.Context, s *statestore.Store, project, stack string) ([]Record, error) {
	entries, err := s.Releases(ctx, project, stack)
	if err != nil {
		return nil, fmt.Errorf("automation: reading the release history of %s/%s: %w", project, stack, err)
	}
	out := make([]Record, 0, len(entries))
	for _, en := range entries {
		var r Record
		if err := json.Unmarshal(en.Data, &r); err != nil {
			return nil, fmt.Errorf("automation: release %s of %s/%s is not valid: %w", en.Name, project, stack, err)
		}
		r.ID = en.Name
		out = append(out, r)
	}
	return out, nil
}

// NewestGood returns the newest good release among recs[:before] whose
// version differs from skip, or nil.
func NewestGood(recs []Record, before int, skip string) *Record {
	for i := before - 1; i >= 0; i-- {
		if recs[i].Good() && recs[i].Version != skip {
			r := recs[i]
			return &r
		}
	}
	return nil
}

// RollbackTarget picks what a rollback restores. When the newest release is
// what the stack runs now (current) and it is good, that is the newest
// good release before it with another version, and from is the newest one
// (to be marked rolled back). Otherwise (the newest release failed, or an
// update the history does not record ran since) it is the newest good
// release.
func RollbackTarget(recs []Record, current bool) (target, from *Record) {
	if len(recs) == 0 {
		return nil, nil
	}
	newest := recs[len(recs)-1]
	if current && newest.Good() {
		if target := NewestGood(recs, len(recs)-1, newest.Version); target != nil {
			return target, &newest
		}
		return nil, nil
	}
	return NewestGood(recs, len(recs), ""), nil
}

// Write stores a record (and, when cp is not nil, its checkpoint)
// and returns the checkpoint's key.
func Write(ctx context.Context, s *statestore.Store, r Record, cp []byte) (string, error) {
	var key string
	if cp != nil {
		// The record names its checkpoint, so write that first.
		var err error
		if key, err = s.WriteRelease(ctx, r.Project, r.Stack, r.ID, []byte("{}"), cp); err != nil {
			return "", err
		}
		r.Checkpoint = s.Location(key)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if _, err := s.WriteRelease(ctx, r.Project, r.Stack, r.ID, b, nil); err != nil {
		return "", err
	}
	return key, nil
}

// Prune removes the oldest records beyond MaxKept, keeping the newest
// good one wherever it is.
func Prune(ctx context.Context, s *statestore.Store, project, stack string) error {
	recs, err := List(ctx, s, project, stack)
	if err != nil || len(recs) <= MaxKept {
		return err
	}
	keep := NewestGood(recs, len(recs), "")
	var errs []error
	for _, r := range recs[:len(recs)-MaxKept] {
		if keep == nil || r.ID != keep.ID {
			errs = append(errs, s.DeleteRelease(ctx, project, stack, r.ID))
		}
	}
	return errors.Join(errs...)
}

package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/opthistory"

	"github.com/slipwayhq/slipway/automation/statestore"
)

// Release is one version of an environment: its program and the smoke
// check that must pass after it is applied.
type Release struct {
	// Version identifies the program and its parameters; Lookup must be able
	// to rebuild the program from it (for example encoded parameters).
	Version string
	Program Program
	// Smoke, when set, checks the environment after the update.
	Smoke func(ctx context.Context, res *Result) error
}

// Deployment is the outcome of Deploy.
type Deployment struct {
	Result *Result `json:"result,omitempty"`
	// RolledBack is set when the release failed and the last-known-good was re-applied.
	RolledBack bool `json:"rolledBack"`
	// Restored is the last-known-good that was re-applied.
	Restored *LastKnownGood `json:"restored,omitempty"`
	// Rollback is the result of re-applying it.
	Rollback *Result `json:"rollback,omitempty"`
}

// ReleaseError says a release failed and what was done about it.
type ReleaseError struct {
	Version string
	Cause   error
	// Restored is the version put back, empty when nothing was restored.
	Restored string
	// RollbackErr is set when restoring failed too.
	RollbackErr error
}

func (e *ReleaseError) Error() string {
	msg := fmt.Sprintf("automation: release %s failed: %v", short(e.Version), e.Cause)
	switch {
	case e.RollbackErr != nil:
		msg += fmt.Sprintf("; rolling back to %s failed too: %v", short(e.Restored), e.RollbackErr)
	case e.Restored != "":
		msg += fmt.Sprintf("; rolled back to %s", short(e.Restored))
	default:
		msg += "; no last-known-good to roll back to"
	}
	return msg
}

func (e *ReleaseError) Unwrap() error { return e.Cause }

func short(v string) string {
	if len(v) > 60 {
		return v[:57] + "..."
	}
	return v
}

// DeployOption configures Deploy.
type DeployOption func(*deployConfig)

type deployConfig struct {
	noRollback bool
	opts       []Option
}

// NoRollback turns automatic rollback off.
func NoRollback() DeployOption { return func(c *deployConfig) { c.noRollback = true } }

// WithOptions passes operation options (policies, events, ...) to the updates.
func WithOptions(opts ...Option) DeployOption {
	return func(c *deployConfig) { c.opts = append(c.opts, opts...) }
}

// Release statuses. Applied, Verified and Restored releases are good:
// Rollback and Deploy's rollback may restore them.
const (
	// ReleaseApplied: a successful up (no smoke check ran).
	ReleaseApplied = "applied"
	// ReleaseVerified: Deploy applied it and its smoke check passed.
	ReleaseVerified = "verified"
	// ReleaseRestored: a rollback applied it again.
	ReleaseRestored = "restored"
	// ReleaseFailed: Deploy's up or smoke check failed, or a rollback to it failed.
	ReleaseFailed = "failed"
	// ReleaseRolledBack: it was good until a rollback replaced it.
	ReleaseRolledBack = "rolled-back"
)

// maxReleases bounds the history kept per stack; older records and their
// checkpoints are removed (never the newest good one).
const maxReleases = 50

// ReleaseRecord is one release of a stack, kept in the backend beside the
// stack's state (.pulumi/slipway/releases/<project>/<stack>/), so any engine
// on the same backend sees it. Backends without a driver (Pulumi Cloud,
// gs://, azblob://) keep it in the engine's directory instead.
type ReleaseRecord struct {
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
}

// Good reports whether the release can be restored: it was applied
// successfully, and it has a version to rebuild the program from.
func (r ReleaseRecord) Good() bool {
	return r.Version != "" && (r.Status == ReleaseApplied || r.Status == ReleaseVerified || r.Status == ReleaseRestored)
}

// LastKnownGood is the good release a rollback restores.
type LastKnownGood = ReleaseRecord

// releaseStore opens where the engine keeps release history: the backend
// itself when it has a driver (file, S3), else the engine's directory.
func (e *Engine) releaseStore(ctx context.Context) (*statestore.Store, error) {
	s, err := statestore.Open(ctx, e.backend, e.env)
	if errors.Is(err, statestore.ErrUnsupported) {
		d, derr := statestore.FileDriver(filepath.Join(e.dir, "releases"))
		if derr != nil {
			return nil, derr
		}
		return statestore.New(d), nil
	}
	if err != nil {
		return nil, fmt.Errorf("automation: opening backend %s for release history: %w", redactURL(e.backend), err)
	}
	return s, nil
}

// Releases returns the release history of a stack, oldest first.
func (e *Engine) Releases(ctx context.Context, project, stack string) ([]ReleaseRecord, error) {
	s, err := e.releaseStore(ctx)
	if err != nil {
		return nil, err
	}
	defer closeStore(s, e.log)
	return releases(ctx, s, project, stack)
}

func releases(ctx context.Context, s *statestore.Store, project, stack string) ([]ReleaseRecord, error) {
	entries, err := s.Releases(ctx, project, stack)
	if err != nil {
		return nil, fmt.Errorf("automation: reading the release history of %s/%s: %w", project, stack, err)
	}
	out := make([]ReleaseRecord, 0, len(entries))
	for _, en := range entries {
		var r ReleaseRecord
		if err := json.Unmarshal(en.Data, &r); err != nil {
			return nil, fmt.Errorf("automation: release %s of %s/%s is not valid: %w", en.Name, project, stack, err)
		}
		r.ID = en.Name
		out = append(out, r)
	}
	return out, nil
}

// LastKnownGood returns the newest good release of a stack, or nil when
// it has none.
func (e *Engine) LastKnownGood(ctx context.Context, project, stack string) (*LastKnownGood, error) {
	recs, err := e.Releases(ctx, project, stack)
	if err != nil {
		return nil, err
	}
	return newestGood(recs, len(recs), ""), nil
}

// newestGood returns the newest good release among recs[:before] whose
// version differs from skip, or nil.
func newestGood(recs []ReleaseRecord, before int, skip string) *ReleaseRecord {
	for i := before - 1; i >= 0; i-- {
		if recs[i].Good() && recs[i].Version != skip {
			r := recs[i]
			return &r
		}
	}
	return nil
}

// rollbackTarget picks what Rollback restores. When the newest release is
// what the stack runs now (current) and it is good, that is the newest
// good release before it with another version, and from is the newest one
// (to be marked rolled back). Otherwise (the newest release failed, or an
// update the history does not record ran since) it is the newest good
// release.
func rollbackTarget(recs []ReleaseRecord, current bool) (target, from *ReleaseRecord) {
	if len(recs) == 0 {
		return nil, nil
	}
	newest := recs[len(recs)-1]
	if current && newest.Good() {
		if target := newestGood(recs, len(recs)-1, newest.Version); target != nil {
			return target, &newest
		}
		return nil, nil
	}
	return newestGood(recs, len(recs), ""), nil
}

// record stores a release of st with the stack's exported checkpoint.
func (e *Engine) record(ctx context.Context, st *Stack, version, status, cause string) (*ReleaseRecord, error) {
	dep, err := st.stack.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("automation: exporting the checkpoint of %s for its release record: %w", st.name, err)
	}
	cp, err := json.Marshal(dep) // secrets stay as the ciphertext the state holds
	if err != nil {
		return nil, err
	}
	r := ReleaseRecord{ID: statestore.NewReleaseName(time.Now()), Project: st.project, Stack: st.name, Version: version,
		Status: status, Recorded: time.Now().UTC(), Cause: short(cause)}
	if status != ReleaseFailed {
		r.Update = lastUpdateOf(ctx, st)
	}
	s, err := e.releaseStore(ctx)
	if err != nil {
		return nil, err
	}
	defer closeStore(s, e.log)
	key, err := writeRecord(ctx, s, r, cp)
	if err != nil {
		return nil, err
	}
	r.Checkpoint = s.Location(key)
	if err := prune(ctx, s, st.project, st.name); err != nil {
		e.log.Warn("pruning the release history failed", "stack", st.name, "error", err)
	}
	return &r, nil
}

// writeRecord stores a record (and, when cp is not nil, its checkpoint)
// and returns the checkpoint's key.
func writeRecord(ctx context.Context, s *statestore.Store, r ReleaseRecord, cp []byte) (string, error) {
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

// prune removes the oldest records beyond maxReleases, keeping the newest
// good one wherever it is.
func prune(ctx context.Context, s *statestore.Store, project, stack string) error {
	recs, err := releases(ctx, s, project, stack)
	if err != nil || len(recs) <= maxReleases {
		return err
	}
	keep := newestGood(recs, len(recs), "")
	var errs []error
	for _, r := range recs[:len(recs)-maxReleases] {
		if keep == nil || r.ID != keep.ID {
			errs = append(errs, s.DeleteRelease(ctx, project, stack, r.ID))
		}
	}
	return errors.Join(errs...)
}

// lastUpdateOf identifies the stack's newest update (kind "update" in its
// history), "" when unknown.
func lastUpdateOf(ctx context.Context, st *Stack) string {
	id, _, err := lastUpdate(ctx, st.stack)
	if err != nil {
		return ""
	}
	return id
}

// lastUpdate identifies the stack's newest update (by its start time: DIY
// backends do not number updates) and reports whether it succeeded.
func lastUpdate(ctx context.Context, s auto.Stack) (string, bool, error) {
	hist, err := s.History(ctx, 20, 1, opthistory.ShowSecrets(false))
	if err != nil {
		return "", false, err
	}
	for _, h := range hist {
		if h.Kind == "update" {
			return h.StartTime, h.Result == "succeeded", nil
		}
	}
	return "", false, nil
}

// recordUp records a successful up of st as a release.
func (e *Engine) recordUp(ctx context.Context, st *Stack) error {
	_, err := e.record(ctx, st, st.version, ReleaseApplied, "")
	return err
}

// noRecord makes an up leave recording its release to the caller.
func noRecord(o *opConfig) { o.noRecord = true }

// Deploy applies a release: Up, then the smoke check. When both pass the
// release is recorded as verified, the stack's last-known-good. When either
// fails, the attempt is recorded as failed and Deploy re-applies the newest
// good release of another version (rebuilt by lookup from its version)
// unless NoRollback is given, and returns a ReleaseError saying what was
// restored.
func (e *Engine) Deploy(ctx context.Context, rel Release, lookup func(version string) (Program, error), opts ...DeployOption) (*Deployment, error) {
	var c deployConfig
	for _, o := range opts {
		o(&c)
	}
	st, err := e.UpsertStack(ctx, rel.Program)
	if err != nil {
		return nil, err
	}
	d := &Deployment{}
	d.Result, err = st.Up(ctx, append(slices.Clone(c.opts), noRecord)...)
	if err == nil && rel.Smoke != nil {
		if serr := rel.Smoke(ctx, d.Result); serr != nil {
			err = fmt.Errorf("smoke check: %w", serr)
		}
	}
	if err == nil {
		_, err := e.record(ctx, st, rel.Version, ReleaseVerified, "")
		return d, err
	}
	rerr := &ReleaseError{Version: rel.Version, Cause: err}
	if IsPolicyBlocked(err) || IsPlanChanged(err) {
		return d, rerr // a blocked release, or one whose plan moved, changed nothing
	}
	if _, ferr := e.record(ctx, st, rel.Version, ReleaseFailed, err.Error()); ferr != nil {
		e.log.Warn("recording the failed release failed", "stack", rel.Program.Stack, "error", ferr)
	}
	if c.noRollback {
		return d, rerr
	}
	recs, lerr := e.Releases(ctx, rel.Program.Project, rel.Program.Stack)
	lkg := newestGood(recs, len(recs), rel.Version)
	if lerr != nil || lkg == nil {
		rerr.RollbackErr = lerr
		return d, rerr
	}
	rerr.Restored = lkg.Version
	prog, lerr := lookup(lkg.Version)
	if lerr == nil {
		if len(prog.Policies) == 0 {
			prog.Policies = rel.Program.Policies // the rollback is held to the same policies
		}
		st, lerr = e.SelectStack(ctx, prog)
	}
	if lerr == nil {
		// The rollback applies the restored release, not the failed one's plan.
		d.Rollback, lerr = st.Up(ctx, append(slices.Clone(c.opts), noRecord, func(o *opConfig) { o.applyPlan = "" })...)
	}
	if lerr != nil {
		rerr.RollbackErr = lerr
		return d, rerr
	}
	if _, werr := e.record(ctx, st, lkg.Version, ReleaseRestored, "automatic rollback after release "+short(rel.Version)+" failed"); werr != nil {
		e.log.Warn("recording the restored release failed", "stack", rel.Program.Stack, "error", werr)
	}
	d.RolledBack, d.Restored = true, lkg
	e.log.Warn("rolled back", "stack", rel.Program.Stack, "failed", short(rel.Version), "restored", short(lkg.Version), "cause", err)
	return d, rerr
}

// Rollback restores the stack's previous good release from the release
// history in the backend, so it works from any engine on that backend.
// When the newest release is what the stack runs, Rollback re-applies the
// newest good release before it with another version and marks the newest
// one rolled back; when the newest update failed (or was not recorded), it
// re-applies the newest good release. It returns the release it restored.
func (e *Engine) Rollback(ctx context.Context, project, stack string, lookup func(version string) (Program, error), opts ...Option) (*Result, *LastKnownGood, error) {
	known, err := e.Stacks(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(known, stack) {
		return nil, nil, &UnknownStackError{Project: project, Stack: stack, Known: known}
	}
	s, err := e.releaseStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer closeStore(s, e.log)
	recs, err := releases(ctx, s, project, stack)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("automation: stack %s/%s has no release history in %s yet; apply a release with up or deploy first", project, stack, redactURL(e.backend))
	}
	current := true
	if newest := recs[len(recs)-1]; newest.Update != "" {
		n, ok, herr := e.lastUpdate(ctx, project, stack)
		switch {
		case herr != nil:
			e.log.Warn("reading the stack history failed; assuming the newest release is live", "stack", stack, "error", herr)
		case n != newest.Update || !ok:
			current = false // a later update (failed, or not recorded) ran
		}
	}
	target, from := rollbackTarget(recs, current)
	if target == nil {
		return nil, nil, fmt.Errorf("automation: stack %s/%s has no earlier good release to roll back to (%d release(s) recorded); deploy a known-good version instead", project, stack, len(recs))
	}
	prog, err := lookup(target.Version)
	if err != nil {
		return nil, target, fmt.Errorf("automation: rebuilding release %s of %s: %w", target.ID, stack, err)
	}
	st, err := e.SelectStack(ctx, prog)
	if err != nil {
		return nil, target, err
	}
	res, err := st.Up(ctx, append(slices.Clone(opts), noRecord)...)
	if err != nil {
		if _, ferr := e.record(ctx, st, target.Version, ReleaseFailed, "rollback: "+err.Error()); ferr != nil {
			e.log.Warn("recording the failed rollback failed", "stack", stack, "error", ferr)
		}
		return res, target, err
	}
	cause := "rollback to release " + target.ID
	if from != nil {
		cause = "rollback from release " + from.ID + " to " + target.ID
		from.Status, from.Cause = ReleaseRolledBack, "rolled back to release "+target.ID
		if _, err := writeRecord(ctx, s, *from, nil); err != nil {
			return res, target, fmt.Errorf("automation: rolled back, but marking release %s rolled back failed: %w", from.ID, err)
		}
	}
	if _, err := e.record(ctx, st, target.Version, ReleaseRestored, cause); err != nil {
		return res, target, fmt.Errorf("automation: rolled back, but recording it failed: %w", err)
	}
	return res, target, nil
}

// lastUpdate identifies a stack's newest update and its outcome.
func (e *Engine) lastUpdate(ctx context.Context, project, stack string) (string, bool, error) {
	ws, err := e.workspace(ctx, project)
	if err != nil {
		return "", false, err
	}
	s, err := auto.SelectStack(ctx, stack, ws)
	if err != nil {
		return "", false, err
	}
	return lastUpdate(ctx, s)
}

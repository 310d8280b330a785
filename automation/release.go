package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/opthistory"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/optdeploy"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// Release is one version of an environment: its program and the smoke
// check that must pass after it is applied.
type Release struct {
	// Version identifies the program and its parameters; Lookup must be able
	// to rebuild the program from it (for example encoded parameters).
	Version string
	Program Program
	// Smoke, when set, checks the environment after the update.
	Smoke func(ctx context.Context, res *outcome.Result) error
}

// Deployment is the outcome of Deploy.
type Deployment struct {
	Result *outcome.Result `json:"result,omitempty"`
	// RolledBack is set when the release failed and the last-known-good was re-applied.
	RolledBack bool `json:"rolledBack"`
	// Restored is the last-known-good that was re-applied.
	Restored *releases.Record `json:"restored,omitempty"`
	// Rollback is the result of re-applying it.
	Rollback *outcome.Result `json:"rollback,omitempty"`
}

// ReleaseError says a release failed and what was done about it.
// Get it with errors.As (a *ReleaseError).
type ReleaseError struct {
	Version string
	Cause   error
	// Restored is the version put back, empty when nothing was restored.
	Restored string
	// RollbackErr is set when restoring failed too.
	RollbackErr error
}

// Error implements error.
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

// Unwrap returns the underlying error.
func (e *ReleaseError) Unwrap() error { return e.Cause }

func short(v string) string {
	if len(v) > 60 {
		return v[:57] + "..."
	}
	return v
}

// Release statuses (see package releases). Applied, Verified and Restored
// releases are good: Rollback and Deploy's rollback may restore them.
const (
	// ReleaseApplied: a successful up (no smoke check ran).
	ReleaseApplied = releases.Applied
	// ReleaseVerified: Deploy applied it and its smoke check passed.
	ReleaseVerified = releases.Verified
	// ReleaseRestored: a rollback applied it again.
	ReleaseRestored = releases.Restored
	// ReleaseFailed: Deploy's up or smoke check failed, or a rollback to it failed.
	ReleaseFailed = releases.Failed
	// ReleaseRolledBack: it was good until a rollback replaced it.
	ReleaseRolledBack = releases.RolledBack
)

// Store opens where the engine keeps Slipway's records — release history,
// run history (package runs), approval requests: the backend itself when it
// has a driver (file, S3), else the engine's directory. The caller closes it.
func (e *Engine) Store(ctx context.Context) (*statestore.Store, error) {
	s, _, err := e.newOperation().Records(ctx)
	return s, err
}

// Releases returns the release history of a stack, oldest first.
func (e *Engine) Releases(ctx context.Context, project, stack string) ([]releases.Record, error) {
	opc, end := e.OperationOf(ctx)
	defer end()
	return e.releases(ctx, opc, project, stack)
}

// releases is Releases in operation op.
func (e *Engine) releases(ctx context.Context, opc *Operation, project, stack string) ([]releases.Record, error) {
	s, _, err := opc.Records(ctx)
	if err != nil {
		return nil, err
	}
	return releases.List(ctx, s, project, stack)
}

// LastKnownGood returns the newest good release of a stack, or nil when
// it has none.
func (e *Engine) LastKnownGood(ctx context.Context, project, stack string) (*releases.Record, error) {
	recs, err := e.Releases(ctx, project, stack)
	if err != nil {
		return nil, err
	}
	return releases.NewestGood(recs, len(recs), ""), nil
}

// record stores a release of st with the stack's exported checkpoint, and
// the revision it applied and that revision's commit time when known.
func (e *Engine) record(ctx context.Context, opc *Operation, st *Stack, version, status, cause, revision string, committed time.Time) (*releases.Record, error) {
	s, backend, err := opc.Records(ctx)
	if err != nil {
		return nil, err
	}
	state := s
	if !backend {
		state = nil // it holds no checkpoint
	}
	cp, err := e.exportCheckpoint(ctx, state, st)
	if err != nil {
		return nil, fmt.Errorf("automation: exporting the checkpoint of %s for its release record: %w", st.name, err)
	}
	r := releases.Record{ID: statestore.NewReleaseName(time.Now()), Project: st.project, Stack: st.name, Version: version,
		Status: status, Recorded: time.Now().UTC(), Cause: short(cause), Revision: revision}
	if !committed.IsZero() {
		r.CommitTime = committed.UTC()
	}
	if status != ReleaseFailed {
		if r.Update = st.updateID(); r.Update == "" {
			r.Update = lastUpdateOf(ctx, st)
		}
	}
	key, err := releases.Write(ctx, s, r, cp)
	if err != nil {
		return nil, err
	}
	r.Checkpoint = s.Location(key)
	if err := releases.Prune(ctx, s, st.project, st.name); err != nil {
		e.log.Warn("pruning the release history failed", "stack", st.name, "error", err)
	}
	return &r, nil
}

// exportCheckpoint returns the stack's deployment as `pulumi stack export`
// prints it, secrets encrypted. backend is the backend's store (nil when
// it has no driver): the checkpoint is read from it directly, with no CLI
// process; otherwise the engine exports it.
func (e *Engine) exportCheckpoint(ctx context.Context, backend *statestore.Store, st *Stack) ([]byte, error) {
	if s := backend; s != nil {
		cp, err := s.ReadCheckpoint(ctx, st.project, st.name)
		if err == nil && !cp.Broken() {
			d, err := cp.Deployment()
			if err != nil {
				return nil, err
			}
			return json.Marshal(d)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	// Not `Stack.Export`: the Automation API exports with --show-secrets.
	env := []string{"PULUMI_HOME=" + e.pulumiHome}
	for k, v := range e.Env() {
		env = append(env, k+"="+v)
	}
	out, stderr, _, err := e.cmd.Run(ctx, st.stack.Workspace().WorkDir(), nil, nil, nil, env, "stack", "export", "--stack", st.name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr))
	}
	var d statestore.Deployment
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return nil, fmt.Errorf("pulumi stack export printed no deployment: %w", err)
	}
	return json.Marshal(d)
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
func (e *Engine) recordUp(ctx context.Context, opc *Operation, st *Stack, revision string, committed time.Time) error {
	_, err := e.record(ctx, opc, st, st.version, ReleaseApplied, "", revision, committed)
	return err
}

// Deploy applies a release: Up, then the smoke check. When both pass the
// release is recorded as verified, the stack's last-known-good. When either
// fails, the attempt is recorded as failed and Deploy re-applies the newest
// good release of another version (rebuilt by lookup from its version)
// unless optdeploy.NoRollback is given, and returns a ReleaseError saying
// what was restored. The options of optdeploy.Up apply to the release's up
// and to the rollback's.
func (e *Engine) Deploy(ctx context.Context, rel Release, lookup func(version string) (Program, error), opts ...optdeploy.Option) (d *Deployment, err error) {
	var o optdeploy.Options
	for _, x := range opts {
		x.ApplyOption(&o)
	}
	c := UpConfig(o.Up)
	ctx, ob := e.Observe(ctx, "deploy", rel.Program)
	ob.Revision = c.Revision
	defer func() { ob.EndDeploy(d, err) }()
	return e.deploy(ctx, ob.Operation, rel, lookup, o.NoRollback, c)
}

// deploy is Deploy with its settings applied; up is the configuration of
// the release's up (a promotion adds its stage's policies and plan to it).
func (e *Engine) deploy(ctx context.Context, opc *Operation, rel Release, lookup func(version string) (Program, error), noRollback bool, up OpConfig) (*Deployment, error) {
	up.NoRecord = true
	st, err := e.UpsertStack(ctx, rel.Program)
	if err != nil {
		return nil, err
	}
	d := &Deployment{}
	d.Result, err = st.RunUp(ctx, up)
	if err == nil && rel.Smoke != nil {
		sctx, smoked := e.Stage(ctx, telemetry.StageSmoke)
		serr := rel.Smoke(sctx, d.Result)
		if smoked(serr); serr != nil {
			err = fmt.Errorf("smoke check: %w", serr)
		}
	}
	if err == nil {
		_, err := e.record(ctx, opc, st, rel.Version, ReleaseVerified, "", up.Revision, up.CommitTime)
		return d, err
	}
	rerr := &ReleaseError{Version: rel.Version, Cause: err}
	if IsPolicyBlocked(err) || IsPlanChanged(err) {
		return d, rerr // a blocked release, or one whose plan moved, changed nothing
	}
	if _, ferr := e.record(ctx, opc, st, rel.Version, ReleaseFailed, mask.New(SecretValues(rel.Program)...).String(err.Error()), up.Revision, up.CommitTime); ferr != nil {
		e.log.WarnContext(ctx, "recording the failed release failed", "stack", rel.Program.Stack, "error", ferr)
	}
	if noRollback {
		return d, rerr
	}
	ctx, rolledBack := e.Stage(ctx, telemetry.StageRollback)
	defer func() { rolledBack(rerr.RollbackErr) }()
	recs, lerr := e.releases(ctx, opc, rel.Program.Project, rel.Program.Stack)
	lkg := releases.NewestGood(recs, len(recs), rel.Version)
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
		rb := up
		rb.ApplyPlan = ""
		d.Rollback, lerr = st.RunUp(ctx, rb)
	}
	if lerr != nil {
		rerr.RollbackErr = lerr
		return d, rerr
	}
	if _, werr := e.record(ctx, opc, st, lkg.Version, ReleaseRestored, "automatic rollback after release "+short(rel.Version)+" failed", "", time.Time{}); werr != nil {
		e.log.WarnContext(ctx, "recording the restored release failed", "stack", rel.Program.Stack, "error", werr)
	}
	d.RolledBack, d.Restored = true, lkg
	e.log.WarnContext(ctx, "rolled back", "stack", rel.Program.Stack, "failed", short(rel.Version), "restored", short(lkg.Version), "cause", err)
	return d, rerr
}

// Rollback restores the stack's previous good release from the release
// history in the backend, so it works from any engine on that backend.
// When the newest release is what the stack runs, Rollback re-applies the
// newest good release before it with another version and marks the newest
// one rolled back; when the newest update failed (or was not recorded), it
// re-applies the newest good release. It returns the release it restored.
func (e *Engine) Rollback(ctx context.Context, project, stack string, lookup func(version string) (Program, error), opts ...optup.Option) (res *outcome.Result, target *releases.Record, err error) {
	ctx, o := e.Observe(ctx, "rollback", Program{Project: project, Stack: stack})
	defer func() { o.End(res, err) }()
	known, err := e.Stacks(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(known, stack) {
		return nil, nil, &UnknownStackError{Project: project, Stack: stack, Known: known}
	}
	s, _, err := o.Operation.Records(ctx)
	if err != nil {
		return nil, nil, err
	}
	recs, err := releases.List(ctx, s, project, stack)
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
			e.log.WarnContext(ctx, "reading the stack history failed; assuming the newest release is live", "stack", stack, "error", herr)
		case n != newest.Update || !ok:
			current = false // a later update (failed, or not recorded) ran
		}
	}
	target, from := releases.RollbackTarget(recs, current)
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
	c := UpConfig(opts)
	c.NoRecord = true
	o.Secrets = mask.New(SecretValues(prog)...)
	opc := o.Operation
	res, err = st.RunUp(ctx, c)
	if err != nil {
		if _, ferr := e.record(ctx, opc, st, target.Version, ReleaseFailed, "rollback: "+o.Secrets.String(err.Error()), "", time.Time{}); ferr != nil {
			e.log.WarnContext(ctx, "recording the failed rollback failed", "stack", stack, "error", ferr)
		}
		return res, target, err
	}
	cause := "rollback to release " + target.ID
	if from != nil {
		cause = "rollback from release " + from.ID + " to " + target.ID
		from.Status, from.Cause = ReleaseRolledBack, "rolled back to release "+target.ID
		if _, err := releases.Write(ctx, s, *from, nil); err != nil {
			return res, target, fmt.Errorf("automation: rolled back, but marking release %s rolled back failed: %w", from.ID, err)
		}
	}
	if _, err := e.record(ctx, opc, st, target.Version, ReleaseRestored, cause, "", time.Time{}); err != nil {
		return res, target, fmt.Errorf("automation: rolled back, but recording it failed: %w", err)
	}
	return res, target, nil
}

// lastUpdate identifies a stack's newest update and its outcome.
func (e *Engine) lastUpdate(ctx context.Context, project, stack string) (string, bool, error) {
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return "", false, err
	}
	s, err := auto.SelectStack(ctx, stack, ws)
	if err != nil {
		return "", false, err
	}
	return lastUpdate(ctx, s)
}

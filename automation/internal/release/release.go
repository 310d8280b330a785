package release

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/review"
	"github.com/slipwayhq/slipway/automation/rollout"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/optdeploy"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// Release is one version of an environment: its program and the smoke
// check that must pass after it is applied.
type Release struct {
	// Version identifies the program and its parameters; Lookup must be able
	// to rebuild the program from it (for example encoded parameters).
	Version string
	Program engine.Program
	// Smoke, when set, checks the environment after the update.
	Smoke func(ctx context.Context, res *outcome.Result) error
	// Gates are checked after the smoke check, one after another (a
	// metric analysis: see package analysis). A gate that is not
	// Successful — Failed, Inconclusive or an error — fails the release
	// like a failed smoke check: it is rolled back, with the gate's
	// verdict in the release history.
	Gates []rollout.Gate
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

// result is the deployment's result (nil for none).
func (d *Deployment) result() *outcome.Result {
	if d == nil {
		return nil
	}
	return d.Result
}

// rolledBack says the deployment's rollback restored the last-known-good.
func (d *Deployment) rolledBack() bool { return d != nil && d.RolledBack }

// RollbackFailed says a rollback was attempted and failed too (its
// metrics and notifications count it as a failed rollback).
func (e *ReleaseError) RollbackFailed() bool { return e.Restored != "" && e.RollbackErr != nil }

// short cuts a long version for messages.
func short(v string) string {
	if len(v) > 60 {
		return v[:57] + "..."
	}
	return v
}

// Deploy applies a release: Up, then the smoke check. When both pass the
// release is recorded as verified, the stack's last-known-good. When either
// fails, the attempt is recorded as failed and Deploy re-applies the newest
// good release of another version (rebuilt by lookup from its version)
// unless optdeploy.NoRollback is given, and returns a ReleaseError saying
// what was restored. The options of optdeploy.Up apply to the release's up
// and to the rollback's.
func Deploy(ctx context.Context, e *engine.Engine, rel Release, lookup func(version string) (engine.Program, error), opts ...optdeploy.Option) (d *Deployment, err error) {
	var o optdeploy.Options
	for _, x := range opts {
		x.ApplyOption(&o)
	}
	c := stack.UpConfig(o.Up)
	ctx, ob := e.Observe(ctx, "deploy", rel.Program)
	ob.Revision = c.Revision
	defer func() { ob.EndDeploy(d.result(), d.rolledBack(), err) }()
	return Run(ctx, e, ob.Operation, rel, lookup, o.NoRollback, c)
}

// deploy is Deploy with its settings applied; up is the configuration of
// the release's up (a promotion adds its stage's policies and plan to it).
func Run(ctx context.Context, e *engine.Engine, opc *engine.Operation, rel Release, lookup func(version string) (engine.Program, error), noRollback bool, up stack.OpConfig) (*Deployment, error) {
	up.NoRecord = true
	st, err := stack.Upsert(ctx, e, rel.Program)
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
	if err == nil && len(rel.Gates) > 0 {
		err = checkGates(ctx, e, rel.Gates)
	}
	if err == nil {
		_, err := stack.Record(ctx, e, opc, st, rel.Version, releases.Verified, "", up.Revision, up.CommitTime)
		return d, err
	}
	rerr := &ReleaseError{Version: rel.Version, Cause: err}
	if engine.IsPolicyBlocked(err) || review.IsPlanChanged(err) {
		return d, rerr // a blocked release, or one whose plan moved, changed nothing
	}
	if _, ferr := stack.Record(ctx, e, opc, st, rel.Version, releases.Failed, mask.New(engine.SecretValues(rel.Program)...).String(err.Error()), up.Revision, up.CommitTime); ferr != nil {
		e.Logger().WarnContext(ctx, "recording the failed release failed", "stack", rel.Program.Stack, "error", ferr)
	}
	if noRollback {
		return d, rerr
	}
	ctx, rolledBack := e.Stage(ctx, telemetry.StageRollback)
	defer func() { rolledBack(rerr.RollbackErr) }()
	recs, lerr := e.ReleasesIn(ctx, opc, rel.Program.Project, rel.Program.Stack)
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
		st, lerr = stack.Select(ctx, e, prog)
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
	if _, werr := stack.Record(ctx, e, opc, st, lkg.Version, releases.Restored, "automatic rollback after release "+short(rel.Version)+" failed", "", time.Time{}); werr != nil {
		e.Logger().WarnContext(ctx, "recording the restored release failed", "stack", rel.Program.Stack, "error", werr)
	}
	d.RolledBack, d.Restored = true, lkg
	e.Logger().WarnContext(ctx, "rolled back", "stack", rel.Program.Stack, "failed", short(rel.Version), "restored", short(lkg.Version), "cause", err)
	return d, rerr
}

// Rollback restores the stack's previous good release from the release
// history in the backend, so it works from any engine on that backend.
// When the newest release is what the stack runs, Rollback re-applies the
// newest good release before it with another version and marks the newest
// one rolled back; when the newest update failed (or was not recorded), it
// re-applies the newest good release. It returns the release it restored.
func Rollback(ctx context.Context, e *engine.Engine, project, name string, lookup func(version string) (engine.Program, error), opts ...optup.Option) (res *outcome.Result, target *releases.Record, err error) {
	ctx, o := e.Observe(ctx, "rollback", engine.Program{Project: project, Stack: name})
	defer func() { o.End(res, err) }()
	known, err := e.Stacks(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(known, name) {
		return nil, nil, &engine.UnknownStackError{Project: project, Stack: name, Known: known}
	}
	s, _, err := o.Operation.Records(ctx)
	if err != nil {
		return nil, nil, err
	}
	recs, err := releases.List(ctx, s, project, name)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("automation: name %s/%s has no release history in %s yet; apply a release with up or deploy first", project, name, mask.URL(e.Backend()))
	}
	current := true
	if newest := recs[len(recs)-1]; newest.Update != "" {
		n, ok, herr := e.LastUpdate(ctx, project, name)
		switch {
		case herr != nil:
			e.Logger().WarnContext(ctx, "reading the name history failed; assuming the newest release is live", "stack", name, "error", herr)
		case n != newest.Update || !ok:
			current = false // a later update (failed, or not recorded) ran
		}
	}
	target, from := releases.RollbackTarget(recs, current)
	if target == nil {
		return nil, nil, fmt.Errorf("automation: name %s/%s has no earlier good release to roll back to (%d release(s) recorded); deploy a known-good version instead", project, name, len(recs))
	}
	prog, err := lookup(target.Version)
	if err != nil {
		return nil, target, fmt.Errorf("automation: rebuilding release %s of %s: %w", target.ID, name, err)
	}
	st, err := stack.Select(ctx, e, prog)
	if err != nil {
		return nil, target, err
	}
	c := stack.UpConfig(opts)
	c.NoRecord = true
	o.Secrets = mask.New(engine.SecretValues(prog)...)
	opc := o.Operation
	res, err = st.RunUp(ctx, c)
	if err != nil {
		if _, ferr := stack.Record(ctx, e, opc, st, target.Version, releases.Failed, "rollback: "+o.Secrets.String(err.Error()), "", time.Time{}); ferr != nil {
			e.Logger().WarnContext(ctx, "recording the failed rollback failed", "stack", name, "error", ferr)
		}
		return res, target, err
	}
	cause := "rollback to release " + target.ID
	if from != nil {
		cause = "rollback from release " + from.ID + " to " + target.ID
		from.Status, from.Cause = releases.RolledBack, "rolled back to release "+target.ID
		if _, err := releases.Write(ctx, s, *from, nil); err != nil {
			return res, target, fmt.Errorf("automation: rolled back, but marking release %s rolled back failed: %w", from.ID, err)
		}
	}
	if _, err := stack.Record(ctx, e, opc, st, target.Version, releases.Restored, cause, "", time.Time{}); err != nil {
		return res, target, fmt.Errorf("automation: rolled back, but recording it failed: %w", err)
	}
	return res, target, nil
}

// Outcome returns what an operation's observation records of a deployment:
// its result and whether its rollback restored the last-known-good.
func (d *Deployment) Outcome() (res *outcome.Result, rolledBack bool) {
	return d.result(), d.rolledBack()
}

// checkGates checks a release's gates after its update: the first that is
// not Successful fails the release.
func checkGates(ctx context.Context, e *engine.Engine, gates []rollout.Gate) error {
	ctx, checked := e.Stage(ctx, telemetry.StageSmoke)
	for _, g := range gates {
		v, detail, err := g.Check(ctx)
		if ob := engine.Observed(ctx); ob != nil { // span events, metrics, run record, notification
			c := rollout.Check{Gate: g.Name(), Verdict: v, Detail: detail, At: time.Now().UTC()}
			if err != nil {
				c.Verdict, c.Error = rollout.Failed, err.Error()
			}
			ob.Check(c)
		}
		switch {
		case err != nil:
			err = fmt.Errorf("analysis %s: %w", g.Name(), err)
			checked(err)
			return err
		case v != rollout.Successful:
			err = fmt.Errorf("analysis %s: %s", g.Name(), v)
			checked(err)
			return err
		}
	}
	checked(nil)
	return nil
}

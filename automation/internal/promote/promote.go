package promote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/release"
	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// Stage is one step of a promotion (dev, then staging, then prod): the same
// program with the stage's parameters, and the gates it must pass.
type Stage struct {
	// Name labels the stage in results and errors.
	Name    string
	Release release.Release
	// Policies are policy pack directories enforced in the stage's preview and up.
	Policies []string
	// Approve, when set, must return nil for the stage to proceed after its
	// preview (a manual approval, a change-window check, ...).
	Approve func(ctx context.Context, stage string, preview *outcome.Result) error
}

// StageResult is what happened at one stage. Err is the stage's failure as
// it happened, a *PromotionError naming the gate (classify it with the
// predicates, e.g. IsPolicyBlocked); Error is its message, for JSON.
type StageResult struct {
	Stage      string              `json:"stage"`
	Preview    *outcome.Result     `json:"preview,omitempty"`
	Deployment *release.Deployment `json:"deployment,omitempty"`
	Err        error               `json:"-"`
	Error      string              `json:"error,omitempty"`
}

// Gates of a promotion stage.
const (
	GatePreview  = "preview"
	GatePolicy   = "policy"
	GateApproval = "approval"
	GateDeploy   = "deploy"
)

// PromotionError says at which stage and gate a promotion stopped.
// Get it with errors.As (a *PromotionError).
type PromotionError struct {
	Stage, Gate string
	Err         error
}

// Error implements error.
func (e *PromotionError) Error() string {
	return fmt.Sprintf("automation: promotion stopped at %s (%s gate): %v", e.Stage, e.Gate, e.Err)
}

// Unwrap returns the underlying error.
func (e *PromotionError) Unwrap() error { return e.Err }

// planPath returns a fresh file for a stage's reviewed plan.
func planPath(e *engine.Engine, p engine.Program) (string, error) {
	dir := filepath.Join(e.Dir(), "plans", p.Project)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, p.Stack+"-*.json")
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// Promote runs the stages in order. Each stage must preview cleanly (with its
// policies), be approved when an approval is configured, and deploy with a
// passing smoke check (rolling back on failure, see Deploy); the first stage
// that fails a gate stops the chain, and later stages are not touched. The
// options apply to every stage's preview and up (with the stage's policies
// added, and the up applying exactly the approved plan).
func Promote(ctx context.Context, e *engine.Engine, stages []Stage, lookup func(version string) (engine.Program, error), opts ...optup.Option) (out []StageResult, err error) {
	ctx, sp := e.Tracer().Start(ctx, telemetry.SpanPrefix+"promote", trace.WithAttributes(attribute.Int("slipway.stages", len(stages))))
	defer func() { telemetry.End(sp, err, nil) }()
	// One operation: every stage uses the store the promotion opens.
	ctx, _, end := e.Begin(ctx)
	defer end()
	for _, s := range stages {
		sctx, o := e.ObserveAs(ctx, telemetry.SpanPromoteStage, "promote", s.Release.Program, telemetry.AttrStage.String(s.Name))
		r, err := promoteStage(sctx, e, o.Operation, s, lookup, opts)
		res, rolledBack := r.Deployment.Outcome()
		o.EndDeploy(res, rolledBack, err)
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// promoteStage runs one stage through its gates, each a stage span.
func promoteStage(ctx context.Context, e *engine.Engine, opc *engine.Operation, s Stage, lookup func(version string) (engine.Program, error), opts []optup.Option) (StageResult, error) {
	r := StageResult{Stage: s.Name}
	fail := func(gate string, err error) (StageResult, error) {
		pe := &PromotionError{Stage: s.Name, Gate: gate, Err: err}
		r.Err, r.Error = pe, err.Error()
		return r, pe
	}
	pctx, previewed := e.Stage(ctx, telemetry.StagePreview)
	st, err := stack.Upsert(pctx, e, s.Release.Program)
	if err != nil {
		previewed(err)
		return fail(GatePreview, err)
	}
	// The stage's policies hold for its preview and its up.
	c := stack.UpConfig(opts)
	c.PolicyDirs = append(slices.Clone(c.PolicyDirs), s.Policies...)
	// The approval is for this plan, and the deploy applies exactly it.
	plan, err := planPath(e, s.Release.Program)
	if err != nil {
		previewed(err)
		return fail(GatePreview, err)
	}
	defer os.Remove(plan)
	pc := c
	pc.ApplyPlan, pc.RefreshFirst, pc.SavePlan = "", false, plan
	r.Preview, err = st.RunPreview(pctx, pc)
	previewed(err)
	if engine.IsPolicyBlocked(err) {
		return fail(GatePolicy, err)
	}
	if err != nil {
		return fail(GatePreview, err)
	}
	if s.Approve != nil {
		actx, approved := e.Stage(ctx, telemetry.StageApproval)
		err := s.Approve(actx, s.Name, r.Preview)
		if approved(err); err != nil {
			return fail(GateApproval, err)
		}
	}
	uc := c
	uc.ApplyPlan = plan
	dctx, deployed := e.Stage(ctx, telemetry.StageDeploy)
	r.Deployment, err = release.Run(dctx, e, opc, s.Release, lookup, false, uc)
	if deployed(err); err != nil {
		return fail(GateDeploy, err)
	}
	return r, nil
}

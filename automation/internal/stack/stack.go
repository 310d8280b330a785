package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	autodestroy "github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	autopreview "github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	autorefresh "github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	autoup "github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/slipwayhq/slipway/automation/internal/engine"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/recovery"
	"github.com/slipwayhq/slipway/automation/review"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/telemetry"
	"github.com/slipwayhq/slipway/policypacks"
)

// observe starts operation op on the stack (see Engine.observe).
func (s *Stack) Observe(ctx context.Context, op string) (context.Context, *engine.Observation) {
	return s.engine.Observe(ctx, op, engine.Program{Project: s.project, Stack: s.name, Config: s.config})
}

// Stack is one environment's stack, ready for engine operations.
type Stack struct {
	stack   auto.Stack
	project string
	name    string
	backend string
	// policies are the program's policy pack directories, enforced on every
	// preview and up of the stack.
	policies []string
	// version is the program's Version, recorded with each release.
	version string
	engine  *engine.Engine
	// config is the program's configuration (its secret values are masked
	// in telemetry).
	config map[string]engine.ConfigValue
	// mu guards recovery (the last Recover's report) and early (what
	// Engine.open repaired before the stack could be opened).
	mu              sync.Mutex
	recovery, early *recovery.Recovery
	// lastUpdate identifies the update of the last up (its start time, as
	// the history reports it), "" when that up failed or none ran; mu
	// guards it.
	lastUpdate string
	log        *slog.Logger
}

// recoverForRetry repairs what a failed attempt left behind before the next.
func (s *Stack) recoverForRetry(ctx context.Context) func() error {
	return func() error {
		_, err := s.Recover(ctx)
		return err
	}
}

// Project returns the stack's project.
func (s *Stack) Project() string { return s.project }

// Engine returns the engine the stack was opened with.
func (s *Stack) Engine() *engine.Engine { return s.engine }

// Logger returns the stack's logger (its project and name attached).
func (s *Stack) Logger() *slog.Logger { return s.log }

// Name returns the stack name.
func (s *Stack) Name() string { return s.name }

// Auto returns the underlying Automation API stack, for what Slipway does not wrap.
// On a file or S3 backend its Workspace is Slipway's wrapper of the
// stack's LocalWorkspace (see stateWorkspace), not a *auto.LocalWorkspace.
func (s *Stack) Auto() *auto.Stack { return &s.stack }

// OpConfig is the settings of one operation inside package automation,
// built from a verb's typed options (optpreview, optup, optrefresh,
// optdestroy) plus what only the package itself sets (noRecord, a plan
// stripped for a rollback, a promotion stage's policies and plan).
type OpConfig struct {
	ExpectNoChanges bool
	OnEvent         func(events.EngineEvent)
	Message         string
	Parallel        int
	Remove          bool
	PolicyDirs      []string
	Attempts        int
	Backoff         time.Duration
	SavePlan        string
	ApplyPlan       string
	PreviewOnly     bool
	RefreshFirst    bool
	// revision is the source revision an up records with its release.
	Revision string
	// commitTime is the time of that revision's commit (zero when unknown).
	CommitTime time.Time
	// noRecord leaves recording the release to the caller (Deploy records
	// it only after its smoke check).
	NoRecord bool
	// stage names a preview's stage span (default telemetry.StagePreview).
	Stage string
}

// PreviewConfig applies preview options.
func PreviewConfig(opts []optpreview.Option) OpConfig {
	var o optpreview.Options
	for _, x := range opts {
		x.ApplyOption(&o)
	}
	return OpConfig{Parallel: o.Parallel, Message: o.Message, PolicyDirs: o.Policies, ExpectNoChanges: o.ExpectNoChanges,
		OnEvent: o.OnEvent, Attempts: o.Attempts, Backoff: o.Backoff, SavePlan: o.Plan}
}

// UpConfig applies up options.
func UpConfig(opts []optup.Option) OpConfig {
	var o optup.Options
	for _, x := range opts {
		x.ApplyOption(&o)
	}
	return OpConfig{Parallel: o.Parallel, Message: o.Message, PolicyDirs: o.Policies, ExpectNoChanges: o.ExpectNoChanges,
		OnEvent: o.OnEvent, Attempts: o.Attempts, Backoff: o.Backoff, RefreshFirst: o.Refresh, ApplyPlan: o.Plan, Revision: o.Revision,
		CommitTime: o.CommitTime}
}

// RefreshConfig applies refresh options.
func RefreshConfig(opts []optrefresh.Option) OpConfig {
	var o optrefresh.Options
	for _, x := range opts {
		x.ApplyOption(&o)
	}
	return OpConfig{Parallel: o.Parallel, Message: o.Message, ExpectNoChanges: o.ExpectNoChanges, PreviewOnly: o.PreviewOnly,
		OnEvent: o.OnEvent, Attempts: o.Attempts, Backoff: o.Backoff}
}

// DestroyConfig applies destroy options.
func DestroyConfig(opts []optdestroy.Option) OpConfig {
	var o optdestroy.Options
	for _, x := range opts {
		x.ApplyOption(&o)
	}
	return OpConfig{Parallel: o.Parallel, Message: o.Message, Remove: o.RemoveStack, OnEvent: o.OnEvent,
		Attempts: o.Attempts, Backoff: o.Backoff}
}

func entries(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = policypacks.Entry(d)
	}
	return out
}

// policyErr turns an engine failure with mandatory policy findings into a PolicyBlockedError.
func policyErr(op string, res *outcome.Result, err error) error {
	if b := res.Blocking(); err != nil && len(b) > 0 {
		return &engine.PolicyBlockedError{Op: op, Violations: b}
	}
	return err
}

func (s *Stack) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case auto.IsConcurrentUpdateError(err):
		// The engine found the stack's lock held: the one type of a locked stack.
		err = &statestore.StackLockedError{Project: s.project, Stack: s.name, Err: err}
	case strings.Contains(err.Error(), "failed to load checkpoint"):
		// A checkpoint that does not load while recovery saw a live owner
		// hold the stack's lock is one that owner is writing: the stack
		// is locked, not broken (an operation that takes no lock, such as
		// preview, reads it half-written).
		if r := s.LastRecovery(); r != nil && len(r.HeldLocks) > 0 {
			err = &statestore.StackLockedError{Project: s.project, Stack: s.name, Locks: slices.Clone(r.HeldLocks), Err: err}
		}
	}
	return &OpError{Op: op, Stack: s.name, Err: err}
}

// policyDirs are the stack's own policy packs plus those given to one operation.
func (s *Stack) policyDirs(c OpConfig) ([]string, error) {
	dirs := slices.Clone(s.policies)
	for _, d := range c.PolicyDirs {
		if slices.Contains(dirs, d) {
			continue
		}
		if s.engine != nil {
			if err := s.engine.CheckPolicyDir(d); err != nil {
				return nil, err
			}
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// Policies returns the policy pack directories enforced on every preview and
// up of the stack (the program's Policies).
func (s *Stack) Policies() []string { return slices.Clone(s.policies) }

// Preview computes the changes an Up would make.
func (s *Stack) Preview(ctx context.Context, opts ...optpreview.Option) (res *outcome.Result, err error) {
	ctx, o := s.Observe(ctx, "preview")
	defer func() { o.End(res, err) }()
	return s.RunPreview(ctx, PreviewConfig(opts))
}

// runPreview is Preview with its settings applied.
func (s *Stack) RunPreview(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	res, err := retry(ctx, c.Attempts, c.Backoff, s.recoverForRetry(ctx), func() (*outcome.Result, error) { return s.preview(ctx, c) })
	if err == nil && c.ExpectNoChanges && res.Changes() > 0 {
		err = &engine.ChangesFoundError{Op: "preview", Stack: s.name, Changes: res.Changes()}
	}
	return res, err
}

func (s *Stack) preview(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	start := time.Now()
	dirs, err := s.policyDirs(c)
	if err != nil {
		return nil, err
	}
	col := outcome.NewCollector(c.OnEvent)
	po := []autopreview.Option{autopreview.EventStreams(col.Events())}
	if c.Message != "" {
		po = append(po, autopreview.Message(c.Message))
	}
	if c.Parallel > 0 {
		po = append(po, autopreview.Parallel(c.Parallel))
	}
	if len(dirs) > 0 {
		po = append(po, autopreview.PolicyPacks(entries(dirs)...))
	}
	if c.SavePlan != "" {
		po = append(po, autopreview.Plan(c.SavePlan))
	}
	if c.Stage == "" {
		c.Stage = telemetry.StagePreview
	}
	ctx, done := s.engine.Stage(ctx, c.Stage)
	r, err := s.stack.Preview(ctx, po...)
	res := col.Result("preview", s.project, s.name, start, outcome.Summary(r.ChangeSummary))
	s.engine.Steps(ctx, res)
	s.log.InfoContext(ctx, "preview", "changes", res.Changes(), "violations", len(res.Policy), "duration", res.Duration, "error", err)
	err = s.wrap("preview", policyErr("preview", res, err))
	done(err)
	return res, err
}

// Up applies the program. With policies (the program's or optup.Policies),
// it previews with them first and applies nothing when they block.
func (s *Stack) Up(ctx context.Context, opts ...optup.Option) (res *outcome.Result, err error) {
	c := UpConfig(opts)
	ctx, o := s.Observe(ctx, "up")
	o.Revision = c.Revision
	defer func() { o.End(res, err) }()
	return s.RunUp(ctx, c)
}

// runUp is Up with its settings applied.
func (s *Stack) RunUp(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	return retry(ctx, c.Attempts, c.Backoff, s.recoverForRetry(ctx), func() (*outcome.Result, error) { return s.up(ctx, c) })
}

func (s *Stack) up(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	start := time.Now()
	dirs, err := s.policyDirs(c)
	if err != nil {
		return nil, err
	}
	if len(dirs) > 0 || c.ExpectNoChanges || c.ApplyPlan != "" {
		// The gate: nothing is applied when the preview is blocked by policy
		// (or, with ExpectNoChanges, has changes, or, with optup.Plan, no
		// longer matches the reviewed plan).
		pc := c
		pc.ExpectNoChanges, pc.SavePlan, pc.Attempts, pc.Stage = false, "", 1, telemetry.StagePolicy
		if len(dirs) == 0 {
			pc.Stage = telemetry.StagePreview
		}
		if c.ApplyPlan != "" {
			tmp, err := os.CreateTemp(filepath.Dir(c.ApplyPlan), ".current-plan-*.json")
			if err != nil {
				return nil, fmt.Errorf("automation: optup.Plan(%q): %w", c.ApplyPlan, err)
			}
			_ = tmp.Close()
			defer os.Remove(tmp.Name())
			pc.SavePlan = tmp.Name()
		}
		pre, err := s.preview(ctx, pc)
		if err == nil && c.ApplyPlan != "" {
			diff, derr := review.ComparePlans(c.ApplyPlan, pc.SavePlan)
			if derr != nil {
				return pre, derr
			}
			if len(diff) > 0 {
				pre.Operation = "up"
				return pre, &review.PlanChangedError{Stack: s.name, Resources: diff}
			}
		}
		var pe *engine.PolicyBlockedError
		if errors.As(err, &pe) {
			pre.Operation = "up"
			pe.Op = "up (gated by its preview; nothing was applied)"
			return pre, s.wrap("up", pe)
		}
		if err != nil {
			return pre, err
		}
		if c.ExpectNoChanges && pre.Changes() > 0 {
			pre.Operation = "up"
			return pre, &engine.ChangesFoundError{Op: "up", Stack: s.name, Changes: pre.Changes()}
		}
	}
	col := outcome.NewCollector(c.OnEvent)
	// The summary's configuration never holds a secret in plain text (and
	// the history it comes from is then read from the backend's store, see
	// stateWorkspace.PulumiCommand).
	uo := []autoup.Option{autoup.EventStreams(col.Events()), autoup.ShowSecrets(false)}
	if c.ExpectNoChanges {
		uo = append(uo, autoup.ExpectNoChanges())
	}
	if c.Message != "" {
		uo = append(uo, autoup.Message(c.Message))
	}
	if c.Parallel > 0 {
		uo = append(uo, autoup.Parallel(c.Parallel))
	}
	if len(dirs) > 0 {
		uo = append(uo, autoup.PolicyPacks(entries(dirs)...))
	}
	if c.ApplyPlan != "" {
		uo = append(uo, autoup.Plan(c.ApplyPlan))
	}
	if c.RefreshFirst {
		uo = append(uo, autoup.Refresh())
	}
	actx, done := s.engine.Stage(ctx, telemetry.StageApply)
	s.setLastUpdate("")
	r, err := s.stack.Up(actx, uo...)
	if err == nil && r.Summary.Kind == "update" {
		// The Automation API read the update's history entry after it ran:
		// a release record needs no second read.
		s.setLastUpdate(r.Summary.StartTime)
	}
	res := col.Result("up", s.project, s.name, start, outcome.SummaryOf(r.Summary.ResourceChanges))
	res.Outputs = outcome.Outputs(r.Outputs)
	s.engine.Steps(actx, res)
	done(policyErr("up", res, err))
	s.log.InfoContext(ctx, "up", "changes", res.Changes(), "violations", len(res.Policy), "duration", res.Duration, "error", err)
	if err == nil && s.engine != nil && !c.NoRecord {
		// Every successful up is a release: recorded beside the stack.
		opc, end := s.engine.OperationOf(ctx)
		defer end()
		if rerr := recordUp(ctx, s.engine, opc, s, c.Revision, c.CommitTime); rerr != nil {
			s.log.WarnContext(ctx, "recording the release failed", "error", rerr)
		}
	}
	return res, s.wrap("up", policyErr("up", res, err))
}

// Refresh reads the live state of every resource into the stack state. With
// optrefresh.ExpectNoChanges it compares first (writing nothing) and returns a
// *ChangesFoundError when live state differs.
func (s *Stack) Refresh(ctx context.Context, opts ...optrefresh.Option) (res *outcome.Result, err error) {
	ctx, o := s.Observe(ctx, "refresh")
	defer func() { o.End(res, err) }()
	return s.RunRefresh(ctx, RefreshConfig(opts))
}

// runRefresh is Refresh with its settings applied.
func (s *Stack) RunRefresh(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	if c.ExpectNoChanges && !c.PreviewOnly {
		pc := c
		pc.PreviewOnly = true
		res, err := retry(ctx, c.Attempts, c.Backoff, s.recoverForRetry(ctx), func() (*outcome.Result, error) { return s.refresh(ctx, pc) })
		if err != nil {
			return res, err
		}
		if n := res.Changes(); n > 0 {
			res.Operation = "refresh"
			return res, &engine.ChangesFoundError{Op: "refresh", Stack: s.name, Changes: n}
		}
	}
	res, err := retry(ctx, c.Attempts, c.Backoff, s.recoverForRetry(ctx), func() (*outcome.Result, error) { return s.refresh(ctx, c) })
	if err == nil && c.ExpectNoChanges && res.Changes() > 0 {
		err = &engine.ChangesFoundError{Op: "refresh", Stack: s.name, Changes: res.Changes()}
	}
	return res, err
}

func (s *Stack) refresh(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	start := time.Now()
	col := outcome.NewCollector(c.OnEvent)
	ro := []autorefresh.Option{autorefresh.EventStreams(col.Events()), autorefresh.ShowSecrets(false)}
	if c.Message != "" {
		ro = append(ro, autorefresh.Message(c.Message))
	}
	if c.Parallel > 0 {
		ro = append(ro, autorefresh.Parallel(c.Parallel))
	}
	ctx, done := s.engine.Stage(ctx, telemetry.StageRefresh)
	if c.PreviewOnly {
		r, err := s.stack.PreviewRefresh(ctx, ro...)
		res := col.Result("refresh-preview", s.project, s.name, start, outcome.Summary(r.ChangeSummary))
		s.engine.Steps(ctx, res)
		err = s.wrap("refresh", err)
		done(err)
		return res, err
	}
	r, err := s.stack.Refresh(ctx, ro...)
	res := col.Result("refresh", s.project, s.name, start, outcome.SummaryOf(r.Summary.ResourceChanges))
	s.engine.Steps(ctx, res)
	s.log.InfoContext(ctx, "refresh", "changes", res.Changes(), "duration", res.Duration, "error", err)
	err = s.wrap("refresh", err)
	done(err)
	return res, err
}

// Destroy deletes every resource of the stack (and, with
// optdestroy.RemoveStack, the stack).
func (s *Stack) Destroy(ctx context.Context, opts ...optdestroy.Option) (res *outcome.Result, err error) {
	ctx, o := s.Observe(ctx, "destroy")
	defer func() { o.End(res, err) }()
	return s.RunDestroy(ctx, DestroyConfig(opts))
}

// runDestroy is Destroy with its settings applied.
func (s *Stack) RunDestroy(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	return retry(ctx, c.Attempts, c.Backoff, s.recoverForRetry(ctx), func() (*outcome.Result, error) { return s.destroy(ctx, c) })
}

func (s *Stack) destroy(ctx context.Context, c OpConfig) (*outcome.Result, error) {
	start := time.Now()
	col := outcome.NewCollector(c.OnEvent)
	do := []autodestroy.Option{autodestroy.EventStreams(col.Events()), autodestroy.ShowSecrets(false)}
	if c.Message != "" {
		do = append(do, autodestroy.Message(c.Message))
	}
	if c.Parallel > 0 {
		do = append(do, autodestroy.Parallel(c.Parallel))
	}
	ctx, done := s.engine.Stage(ctx, telemetry.StageDestroy)
	r, err := s.stack.Destroy(ctx, do...)
	res := col.Result("destroy", s.project, s.name, start, outcome.SummaryOf(r.Summary.ResourceChanges))
	s.engine.Steps(ctx, res)
	s.log.InfoContext(ctx, "destroy", "changes", res.Changes(), "duration", res.Duration, "error", err)
	if err == nil && c.Remove {
		err = s.stack.Workspace().RemoveStack(ctx, s.name)
	}
	err = s.wrap("destroy", err)
	done(err)
	return res, err
}

// Outputs returns the stack's current outputs (secrets masked).
func (s *Stack) Outputs(ctx context.Context) (map[string]any, error) {
	m, err := s.stack.Outputs(ctx)
	return outcome.Outputs(m), s.wrap("outputs", err)
}

// OpError is the error of a failed engine operation: which operation of
// which stack failed, and why (Err). Get it with errors.As; classify its
// cause with the predicates, which see through it: IsStackLocked (another
// update holds the stack), IsPolicyBlocked, IsChangesFound, IsTransient.
type OpError struct {
	Op, Stack string
	Err       error
}

// Error implements error.
func (e *OpError) Error() string {
	return fmt.Sprintf("automation: %s of stack %s: %v", e.Op, e.Stack, e.Err)
}

// Unwrap returns the engine error.
func (e *OpError) Unwrap() error { return e.Err }

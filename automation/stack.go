package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/slipwayhq/slipway/policypacks"
)

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
	engine  *Engine
	// mu guards recovery (the last Recover's report) and early (what
	// Engine.open repaired before the stack could be opened).
	mu              sync.Mutex
	recovery, early *Recovery
	log             *slog.Logger
}

// recoverForRetry repairs what a failed attempt left behind before the next.
func (s *Stack) recoverForRetry(ctx context.Context) func() error {
	return func() error {
		_, err := s.Recover(ctx)
		return err
	}
}

// Name returns the stack name.
func (s *Stack) Name() string { return s.name }

// Auto returns the underlying Automation API stack, for what Slipway does not wrap.
func (s *Stack) Auto() *auto.Stack { return &s.stack }

// ResourceChange is what one engine step did (or would do) to a resource.
type ResourceChange struct {
	URN  string `json:"urn"`
	Type string `json:"type"`
	// Op is the engine operation: create, update, delete, replace, same, refresh, ...
	Op string `json:"op"`
	// Diffs lists the top-level properties that differ.
	Diffs []string `json:"diffs,omitempty"`
	// DetailedDiff maps property paths to the kind of difference (add, update, delete, ...).
	DetailedDiff map[string]string `json:"detailedDiff,omitempty"`
	// Properties lists, for refreshes, each property whose live value differs
	// from the recorded state: expected (state) versus actual (live).
	Properties []PropertyChange `json:"properties,omitempty"`
	// Duration is the time from the engine starting the step to its outputs
	// (zero in previews). JSON carries it as durationSeconds.
	Duration time.Duration `json:"-"`
}

// MarshalJSON encodes the change with its duration in seconds.
func (c ResourceChange) MarshalJSON() ([]byte, error) {
	type plain ResourceChange
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"durationSeconds,omitempty"`
	}{plain(c), c.Duration.Seconds()})
}

// Result is the typed outcome of one operation.
type Result struct {
	Operation string `json:"operation"`
	Project   string `json:"project"`
	Stack     string `json:"stack"`
	// Summary counts resources per operation.
	Summary map[string]int `json:"summary"`
	// Resources lists per-resource steps in engine order.
	Resources []ResourceChange `json:"resources"`
	// Policy lists the policy violations the engine reported.
	Policy []PolicyFinding `json:"policy,omitempty"`
	// Outputs are the stack outputs; secret values are replaced by "[secret]".
	Outputs map[string]any `json:"outputs,omitempty"`
	// Duration is the operation's wall time; JSON carries it as durationSeconds.
	Duration time.Duration `json:"-"`
}

// MarshalJSON encodes the result with its duration in seconds and its
// change count.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	if p.Summary == nil {
		p.Summary = map[string]int{}
	}
	if p.Resources == nil {
		p.Resources = []ResourceChange{}
	}
	return json.Marshal(struct {
		plain
		Changes int     `json:"changes"`
		Seconds float64 `json:"durationSeconds"`
	}{p, r.Changes(), r.Duration.Seconds()})
}

// Changes returns the number of resources that an operation changes (any
// operation other than same, read and refresh without a diff).
func (r *Result) Changes() int {
	if len(r.Summary) == 0 {
		// A failed run (e.g. with ExpectNoChanges) carries no summary; count the steps.
		n := 0
		for _, c := range r.Changed() {
			if c.Op != string(apitype.OpRefresh) && c.Type != "pulumi:pulumi:Stack" {
				n++
			}
		}
		return n
	}
	n := 0
	for op, c := range r.Summary {
		if op != string(apitype.OpSame) && op != string(apitype.OpRead) && op != string(apitype.OpRefresh) {
			n += c
		}
	}
	return n
}

// Changed returns the resource changes other than "same".
func (r *Result) Changed() []ResourceChange {
	var out []ResourceChange
	for _, c := range r.Resources {
		if c.Op != string(apitype.OpSame) && c.Op != string(apitype.OpRead) {
			out = append(out, c)
		}
	}
	return out
}

// collector gathers per-resource steps from the engine's event stream.
type collector struct {
	ch   chan events.EngineEvent
	mu   sync.Mutex
	res  []ResourceChange
	pol  []PolicyFinding
	seen map[string]int
	on   func(events.EngineEvent)
	// started records when each step began, by URN.
	started map[string]time.Time
	// stop tells the reader that the operation returned; handled is closed
	// when the reader will call on no more; exited when the reader ended.
	stop, handled, exited chan struct{}
}

// drainWindow bounds how long the reader keeps discarding events that
// arrive after the operation returned (the Automation API's event server
// may still be shutting down); none of them reaches OnEvent.
const drainWindow = 2 * time.Second

func newCollector(on func(events.EngineEvent)) *collector {
	c := &collector{ch: make(chan events.EngineEvent), seen: map[string]int{}, on: on, started: map[string]time.Time{},
		stop: make(chan struct{}), handled: make(chan struct{}), exited: make(chan struct{})}
	go c.read()
	return c
}

// read handles events until the engine closes the stream or the operation
// returns, then discards stragglers for at most drainWindow and exits.
func (c *collector) read() {
	defer close(c.exited)
	defer func() {
		select {
		case <-c.handled:
		default:
			close(c.handled)
		}
	}()
	for {
		select {
		case ev, ok := <-c.ch:
			if !ok {
				return
			}
			c.handle(ev)
		case <-c.stop:
			// Whatever was sent before the operation returned has been
			// received: sends are unbuffered.
			close(c.handled)
			t := time.NewTimer(drainWindow)
			defer t.Stop()
			for {
				select {
				case _, ok := <-c.ch:
					if !ok {
						return
					}
				case <-t.C:
					return
				}
			}
		}
	}
}

func (c *collector) handle(ev events.EngineEvent) {
	if c.on != nil {
		c.on(ev)
	}
	if f, ok := policyFinding(ev); ok {
		c.mu.Lock()
		c.pol = append(c.pol, f)
		c.mu.Unlock()
		return
	}
	var md *apitype.StepEventMetadata
	var took time.Duration
	switch {
	case ev.ResourcePreEvent != nil:
		md = &ev.ResourcePreEvent.Metadata
		c.started[md.URN] = time.Now()
	case ev.ResOutputsEvent != nil:
		md = &ev.ResOutputsEvent.Metadata
		if t, ok := c.started[md.URN]; ok {
			took = time.Since(t)
		}
	}
	if md == nil || md.URN == "" {
		return
	}
	c.add(md, took)
}

func (c *collector) add(md *apitype.StepEventMetadata, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := ResourceChange{URN: md.URN, Type: md.Type, Op: string(md.Op), Diffs: md.Diffs, Duration: took}
	if len(md.DetailedDiff) > 0 {
		rc.DetailedDiff = map[string]string{}
		for k, d := range md.DetailedDiff {
			rc.DetailedDiff[k] = string(d.Kind)
		}
	}
	if md.Old != nil && md.New != nil && (md.Op == apitype.OpUpdate || md.Op == apitype.OpRefresh) {
		rc.Properties = diffProperties(md.Old.Outputs, md.New.Outputs)
		if len(rc.DetailedDiff) > 0 {
			// The engine's diff honours ignoreChanges (an autoscaler's
			// replicas, say): a recorded value that moved counts only where
			// the engine diffs it. Fields added out of band are reported.
			rc.Properties = slices.DeleteFunc(rc.Properties, func(p PropertyChange) bool {
				return p.Expected != nil && !underAny(p.Path, rc.DetailedDiff)
			})
		}
	}
	if len(rc.Diffs) == 0 {
		rc.Diffs = topLevel(rc.Properties)
		for k := range rc.DetailedDiff {
			if top := topLevel([]PropertyChange{{Path: k}})[0]; !slices.Contains(rc.Diffs, top) {
				rc.Diffs = append(rc.Diffs, top)
			}
		}
		slices.Sort(rc.Diffs)
	}
	key := md.URN + "\x00" + string(md.Op)
	// A refresh announces each resource ("refresh"), then reports what it
	// found ("same" or "update"): keep only the finding.
	if i, ok := c.seen[md.URN+"\x00"+string(apitype.OpRefresh)]; ok && md.Op != apitype.OpRefresh {
		delete(c.seen, md.URN+"\x00"+string(apitype.OpRefresh))
		c.seen[key] = i
		c.res[i] = rc
		return
	}
	if i, ok := c.seen[key]; ok {
		// The outputs event repeats the pre event; keep the richer diff.
		if len(rc.Diffs) > 0 || rc.DetailedDiff != nil || rc.Properties != nil {
			c.res[i] = rc
		}
		if took > 0 {
			c.res[i].Duration = took
		}
		return
	}
	c.seen[key] = len(c.res)
	c.res = append(c.res, rc)
}

// underAny reports whether path is one of keys, or a parent or child of one.
func underAny(path string, keys map[string]string) bool {
	related := func(a, b string) bool {
		return a == b || strings.HasPrefix(b, a+".") || strings.HasPrefix(b, a+"[")
	}
	for k := range keys {
		// The engine quotes keys that hold dots: data["a.b"] is data.a.b here.
		k = strings.NewReplacer(`["`, ".", `"]`, "").Replace(k)
		if related(path, k) || related(k, path) {
			return true
		}
	}
	return false
}

// wait is called once the operation returned: it waits until the reader
// will call OnEvent no more and returns the steps. The reader goroutine ends
// on its own shortly after (see drainWindow).
func (c *collector) wait() []ResourceChange {
	close(c.stop)
	<-c.handled
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.res)
}

// Option configures one operation.
type Option func(*opConfig)

type opConfig struct {
	expectNoChanges bool
	onEvent         func(events.EngineEvent)
	message         string
	parallel        int
	remove          bool
	policyDirs      []string
	attempts        int
	backoff         time.Duration
	savePlan        string
	applyPlan       string
	previewOnly     bool
	refreshFirst    bool
	// noRecord leaves recording the release to the caller (Deploy records
	// it only after its smoke check).
	noRecord bool
}

// PreviewOnly makes Refresh compare live state without writing it to the stack.
func PreviewOnly() Option { return func(c *opConfig) { c.previewOnly = true } }

// RefreshFirst makes Up refresh the state before it computes the update, so
// it corrects drift in the live objects.
func RefreshFirst() Option { return func(c *opConfig) { c.refreshFirst = true } }

// Policies runs the policy pack directories (see Engine.PolicyDir and
// policypacks.WriteDir) inside the engine. Preview fails with a PolicyError on mandatory violations; Up
// first previews with the packs and applies nothing when that is blocked.
func Policies(dirs ...string) Option {
	return func(c *opConfig) { c.policyDirs = append(c.policyDirs, dirs...) }
}

// ExpectNoChanges makes the operation fail with a *ChangesError when it
// finds any change. Preview and Refresh compare first and change nothing;
// Up previews first and applies nothing when the preview has changes. Any
// other failure keeps its own error, so "changes found" never hides one.
func ExpectNoChanges() Option { return func(c *opConfig) { c.expectNoChanges = true } }

// ChangesError says an operation run with ExpectNoChanges found changes;
// the operation itself succeeded.
type ChangesError struct {
	Op, Stack string
	// Changes is the number of resources that would change (or drifted).
	Changes int
}

func (e *ChangesError) Error() string {
	return fmt.Sprintf("automation: %s of stack %s found %d change(s) where none were expected", e.Op, e.Stack, e.Changes)
}

// IsChangesFound reports whether err is (or wraps) a *ChangesError.
func IsChangesFound(err error) bool {
	var c *ChangesError
	return errors.As(err, &c)
}

// OnEvent calls fn for every engine event, in order, from one goroutine.
func OnEvent(fn func(events.EngineEvent)) Option { return func(c *opConfig) { c.onEvent = fn } }

// Message sets the update message recorded in the stack history.
func Message(m string) Option { return func(c *opConfig) { c.message = m } }

// Parallel bounds the number of resource operations the engine runs at once.
func Parallel(n int) Option { return func(c *opConfig) { c.parallel = n } }

// RemoveStack makes Destroy also remove the emptied stack from the backend.
func RemoveStack() Option { return func(c *opConfig) { c.remove = true } }

func apply(opts []Option) opConfig {
	var c opConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

func (s *Stack) result(op string, start time.Time, summary map[string]int, col *collector) *Result {
	res := col.wait()
	col.mu.Lock()
	pol := slices.Clone(col.pol)
	col.mu.Unlock()
	return &Result{Operation: op, Project: s.project, Stack: s.name, Summary: summary, Resources: res,
		Policy: pol, Duration: time.Since(start)}
}

func entries(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = policypacks.Entry(d)
	}
	return out
}

// policyErr turns an engine failure with mandatory policy findings into a PolicyError.
func policyErr(op string, res *Result, err error) error {
	if b := blocking(res.Policy); err != nil && len(b) > 0 {
		return &PolicyError{Op: op, Violations: b}
	}
	return err
}

func summaryOf(m map[apitype.OpType]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

func summaryPtr(m *map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return *m
}

func outputsOf(m auto.OutputMap) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if v.Secret {
			out[k] = "[secret]"
		} else {
			out[k] = v.Value
		}
	}
	return out
}

func (s *Stack) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Stack: s.name, Err: err}
}

// policyDirs are the stack's own policy packs plus those given to one operation.
func (s *Stack) policyDirs(c opConfig) ([]string, error) {
	dirs := slices.Clone(s.policies)
	for _, d := range c.policyDirs {
		if slices.Contains(dirs, d) {
			continue
		}
		if s.engine != nil {
			if err := s.engine.checkPolicyDir(d); err != nil {
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
func (s *Stack) Preview(ctx context.Context, opts ...Option) (*Result, error) {
	c := apply(opts)
	res, err := retry(ctx, c.attempts, c.backoff, s.recoverForRetry(ctx), func() (*Result, error) { return s.preview(ctx, c) })
	if err == nil && c.expectNoChanges && res.Changes() > 0 {
		err = &ChangesError{Op: "preview", Stack: s.name, Changes: res.Changes()}
	}
	return res, err
}

func (s *Stack) preview(ctx context.Context, c opConfig) (*Result, error) {
	start := time.Now()
	dirs, err := s.policyDirs(c)
	if err != nil {
		return nil, err
	}
	col := newCollector(c.onEvent)
	po := []optpreview.Option{optpreview.EventStreams(col.ch)}
	if c.parallel > 0 {
		po = append(po, optpreview.Parallel(c.parallel))
	}
	if len(dirs) > 0 {
		po = append(po, optpreview.PolicyPacks(entries(dirs)...))
	}
	if c.savePlan != "" {
		po = append(po, optpreview.Plan(c.savePlan))
	}
	r, err := s.stack.Preview(ctx, po...)
	res := s.result("preview", start, summaryOf(r.ChangeSummary), col)
	s.log.Info("preview", "changes", res.Changes(), "violations", len(res.Policy), "duration", res.Duration, "error", err)
	return res, s.wrap("preview", policyErr("preview", res, err))
}

// Up applies the program. With policies (the program's or Policies), it
// previews with them first and applies nothing when they block.
func (s *Stack) Up(ctx context.Context, opts ...Option) (*Result, error) {
	c := apply(opts)
	return retry(ctx, c.attempts, c.backoff, s.recoverForRetry(ctx), func() (*Result, error) { return s.up(ctx, c) })
}

func (s *Stack) up(ctx context.Context, c opConfig) (*Result, error) {
	start := time.Now()
	dirs, err := s.policyDirs(c)
	if err != nil {
		return nil, err
	}
	if len(dirs) > 0 || c.expectNoChanges || c.applyPlan != "" {
		// The gate: nothing is applied when the preview is blocked by policy
		// (or, with ExpectNoChanges, has changes, or, with ApplyPlan, no
		// longer matches the reviewed plan).
		pc := c
		pc.expectNoChanges, pc.savePlan, pc.attempts = false, "", 1
		if c.applyPlan != "" {
			tmp, err := os.CreateTemp(filepath.Dir(c.applyPlan), ".current-plan-*.json")
			if err != nil {
				return nil, fmt.Errorf("automation: ApplyPlan(%q): %w", c.applyPlan, err)
			}
			_ = tmp.Close()
			defer os.Remove(tmp.Name())
			pc.savePlan = tmp.Name()
		}
		pre, err := s.preview(ctx, pc)
		if err == nil && c.applyPlan != "" {
			diff, derr := comparePlans(c.applyPlan, pc.savePlan)
			if derr != nil {
				return pre, derr
			}
			if len(diff) > 0 {
				pre.Operation = "up"
				return pre, &PlanChangedError{Stack: s.name, Resources: diff}
			}
		}
		var pe *PolicyError
		if errors.As(err, &pe) {
			pre.Operation = "up"
			pe.Op = "up (gated by its preview; nothing was applied)"
			return pre, s.wrap("up", pe)
		}
		if err != nil {
			return pre, err
		}
		if c.expectNoChanges && pre.Changes() > 0 {
			pre.Operation = "up"
			return pre, &ChangesError{Op: "up", Stack: s.name, Changes: pre.Changes()}
		}
	}
	col := newCollector(c.onEvent)
	uo := []optup.Option{optup.EventStreams(col.ch)}
	if c.expectNoChanges {
		uo = append(uo, optup.ExpectNoChanges())
	}
	if c.message != "" {
		uo = append(uo, optup.Message(c.message))
	}
	if c.parallel > 0 {
		uo = append(uo, optup.Parallel(c.parallel))
	}
	if len(dirs) > 0 {
		uo = append(uo, optup.PolicyPacks(entries(dirs)...))
	}
	if c.applyPlan != "" {
		uo = append(uo, optup.Plan(c.applyPlan))
	}
	if c.refreshFirst {
		uo = append(uo, optup.Refresh())
	}
	r, err := s.stack.Up(ctx, uo...)
	res := s.result("up", start, summaryPtr(r.Summary.ResourceChanges), col)
	res.Outputs = outputsOf(r.Outputs)
	s.log.Info("up", "changes", res.Changes(), "violations", len(res.Policy), "duration", res.Duration, "error", err)
	if err == nil && s.engine != nil && !c.noRecord {
		// Every successful up is a release: recorded beside the stack.
		if rerr := s.engine.recordUp(ctx, s); rerr != nil {
			s.log.Warn("recording the release failed", "error", rerr)
		}
	}
	return res, s.wrap("up", policyErr("up", res, err))
}

// Refresh reads the live state of every resource into the stack state. With
// ExpectNoChanges it compares first (writing nothing) and returns a
// *ChangesError when live state differs.
func (s *Stack) Refresh(ctx context.Context, opts ...Option) (*Result, error) {
	c := apply(opts)
	if c.expectNoChanges && !c.previewOnly {
		pc := c
		pc.previewOnly = true
		res, err := retry(ctx, c.attempts, c.backoff, s.recoverForRetry(ctx), func() (*Result, error) { return s.refresh(ctx, pc) })
		if err != nil {
			return res, err
		}
		if n := res.Changes(); n > 0 {
			res.Operation = "refresh"
			return res, &ChangesError{Op: "refresh", Stack: s.name, Changes: n}
		}
	}
	res, err := retry(ctx, c.attempts, c.backoff, s.recoverForRetry(ctx), func() (*Result, error) { return s.refresh(ctx, c) })
	if err == nil && c.expectNoChanges && res.Changes() > 0 {
		err = &ChangesError{Op: "refresh", Stack: s.name, Changes: res.Changes()}
	}
	return res, err
}

func (s *Stack) refresh(ctx context.Context, c opConfig) (*Result, error) {
	start := time.Now()
	col := newCollector(c.onEvent)
	ro := []optrefresh.Option{optrefresh.EventStreams(col.ch)}
	if c.message != "" {
		ro = append(ro, optrefresh.Message(c.message))
	}
	if c.previewOnly {
		r, err := s.stack.PreviewRefresh(ctx, ro...)
		res := s.result("refresh-preview", start, summaryOf(r.ChangeSummary), col)
		return res, s.wrap("refresh", err)
	}
	r, err := s.stack.Refresh(ctx, ro...)
	res := s.result("refresh", start, summaryPtr(r.Summary.ResourceChanges), col)
	s.log.Info("refresh", "changes", res.Changes(), "duration", res.Duration, "error", err)
	return res, s.wrap("refresh", err)
}

// Destroy deletes every resource of the stack (and, with RemoveStack, the stack).
func (s *Stack) Destroy(ctx context.Context, opts ...Option) (*Result, error) {
	c := apply(opts)
	return retry(ctx, c.attempts, c.backoff, s.recoverForRetry(ctx), func() (*Result, error) { return s.destroy(ctx, c) })
}

func (s *Stack) destroy(ctx context.Context, c opConfig) (*Result, error) {
	start := time.Now()
	col := newCollector(c.onEvent)
	do := []optdestroy.Option{optdestroy.EventStreams(col.ch)}
	if c.message != "" {
		do = append(do, optdestroy.Message(c.message))
	}
	r, err := s.stack.Destroy(ctx, do...)
	res := s.result("destroy", start, summaryPtr(r.Summary.ResourceChanges), col)
	s.log.Info("destroy", "changes", res.Changes(), "duration", res.Duration, "error", err)
	if err == nil && c.remove {
		err = s.stack.Workspace().RemoveStack(ctx, s.name)
	}
	return res, s.wrap("destroy", err)
}

// Outputs returns the stack's current outputs (secrets masked).
func (s *Stack) Outputs(ctx context.Context) (map[string]any, error) {
	m, err := s.stack.Outputs(ctx)
	return outputsOf(m), s.wrap("outputs", err)
}

// OpError is the error of a failed engine operation. Use errors.As to get it,
// and the predicates IsConcurrentUpdate and IsExpectedChanges to classify it.
type OpError struct {
	Op, Stack string
	Err       error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("automation: %s of stack %s: %v", e.Op, e.Stack, e.Err)
}

// Unwrap returns the engine error.
func (e *OpError) Unwrap() error { return e.Err }

// IsConcurrentUpdate reports whether err says another update holds the stack's lock.
func IsConcurrentUpdate(err error) bool { return auto.IsConcurrentUpdateError(err) }

package ephemeral

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/internal/stack"

	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// Stack tags that mark an ephemeral environment in the backend.
const (
	TagEphemeral = "slipway:ephemeral"
	TagExpires   = "slipway:expires-at"
	TagKey       = "slipway:key"
)

// Ephemeral describes an ephemeral environment's lifetime.
type Ephemeral struct {
	Stack   string    `json:"stack"`
	Key     string    `json:"key"`
	Expires time.Time `json:"expires"`
}

// CreateEphemeral brings up prog as an ephemeral environment for key (for
// example a pull-request number) that expires after ttl. The expiry is
// recorded as stack tags in the backend, so any process can collect it.
// Calling it again for a live environment updates it and extends the TTL.
func Create(ctx context.Context, e *engine.Engine, prog engine.Program, key string, ttl time.Duration, opts ...optup.Option) (res *outcome.Result, eph *Ephemeral, err error) {
	ctx, o := e.Observe(ctx, "ephemeral-create", prog)
	defer func() { o.End(res, err) }()
	if key == "" {
		return nil, nil, errors.New("automation: ephemeral key is empty; pass e.g. the pull-request number")
	}
	if ttl <= 0 {
		return nil, nil, fmt.Errorf("automation: ephemeral TTL %s must be positive, e.g. 24h", ttl)
	}
	// An existing stack may be renewed only when it is ephemeral itself:
	// tagging prod as ephemeral would hand it to the garbage collector.
	if err := requireEphemeral(ctx, e, o.Operation, prog.Project, prog.Stack); err != nil && !engine.IsUnknownStack(err) {
		return nil, nil, err
	}
	st, err := stack.Upsert(ctx, e, prog)
	if err != nil {
		return nil, nil, err
	}
	eph = &Ephemeral{Stack: prog.Stack, Key: key, Expires: time.Now().Add(ttl).UTC().Truncate(time.Second)}
	// Tag before the update so a failed or interrupted create is still collected.
	if err := setTags(ctx, o.Operation, st, map[string]string{TagEphemeral: "true", TagKey: key, TagExpires: eph.Expires.Format(time.RFC3339)}); err != nil {
		return nil, nil, fmt.Errorf("automation: tagging ephemeral stack %s: %w", prog.Stack, err)
	}
	res, err = st.Up(ctx, opts...)
	return res, eph, err
}

// Ephemerals lists the ephemeral environments of project in the backend.
func List(ctx context.Context, e *engine.Engine, project string) ([]Ephemeral, error) {
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return nil, err
	}
	names, err := engine.StackNames(ctx, ws, project)
	if err != nil {
		return nil, err
	}
	var out []Ephemeral
	for _, name := range names {
		tags, err := ws.ListTags(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("automation: tags of %s: %w", name, err)
		}
		if tags[TagEphemeral] != "true" {
			continue
		}
		exp, err := time.Parse(time.RFC3339, tags[TagExpires])
		if err != nil {
			exp = time.Time{} // unreadable expiry: collect it
		}
		out = append(out, Ephemeral{Stack: name, Key: tags[TagKey], Expires: exp})
	}
	return out, nil
}

// GCResult reports what GC did with one expired environment. Err is the
// failure as it happened (classify it with the predicates, e.g.
// IsStackLocked); Error is its message, for JSON.
type GCResult struct {
	Ephemeral
	Result *outcome.Result `json:"result,omitempty"`
	Err    error           `json:"-"`
	Error  string          `json:"error,omitempty"`
}

// GC destroys and removes every ephemeral environment of project that
// expired before now, with everything the backend kept of it (see
// purgeEphemeral), at most concurrency environments at a time (all at
// once when concurrency < 1). Destroying needs only the state in the
// backend, not the environment's program.
func GC(ctx context.Context, e *engine.Engine, project string, now time.Time, concurrency int) ([]GCResult, error) {
	// One operation: every destroy uses the store GC opens.
	ctx, opc, end := e.Begin(ctx)
	defer end()
	all, err := List(ctx, e, project)
	if err != nil {
		return nil, err
	}
	var expired []engine.Program
	byStack := map[string]Ephemeral{}
	for _, eph := range all {
		if eph.Expires.Before(now) {
			expired = append(expired, engine.Program{Project: project, Stack: eph.Stack, Run: stack.NoProgram})
			byStack[eph.Stack] = eph
		}
	}
	var out []GCResult
	// The tag is checked again just before each destroy.
	gcDestroy := stack.Op{Name: "ephemeral-destroy", Run: func(ctx context.Context, s *stack.Stack) (*outcome.Result, error) {
		if err := requireEphemeral(ctx, e, opc, s.Project(), s.Name()); err != nil {
			return nil, err
		}
		res, err := s.DestroyStateOnly(ctx, opc)
		if err == nil {
			err = purge(ctx, e, opc, s.Project(), s.Name())
		}
		return res, err
	}}
	for _, r := range stack.Each(ctx, e, expired, gcDestroy, concurrency) {
		g := GCResult{Ephemeral: byStack[r.Stack], Result: r.Result, Err: r.Err, Error: r.Error}
		out = append(out, g)
	}
	e.Logger().InfoContext(ctx, "gc", "project", project, "ephemeral", len(all), "expired", len(expired))
	return out, nil
}

// NotEphemeralError says an ephemeral-only operation named a stack that does
// not carry Slipway's ephemeral tag.
type NotEphemeralError struct {
	Project, Stack string
}

// Error implements error.
func (e *NotEphemeralError) Error() string {
	return fmt.Sprintf("automation: environment %q of project %s is not ephemeral (it lacks the stack tag %s=true); "+
		"ephemeral verbs and GC act only on environments made by ephemeral create, use destroy for others", e.Stack, e.Project, TagEphemeral)
}

// IsNotEphemeral reports whether err is (or wraps) a *NotEphemeralError.
func IsNotEphemeral(err error) bool {
	var n *NotEphemeralError
	return errors.As(err, &n)
}

// requireEphemeral refuses a stack the backend does not hold (with an
// *UnknownStackError) or that lacks the ephemeral tag (*NotEphemeralError),
// reading both through one workspace.
func requireEphemeral(ctx context.Context, e *engine.Engine, opc *engine.Operation, project, name string) error {
	if tags, ok := storedTags(ctx, opc, project, name); ok {
		if tags[TagEphemeral] != "true" {
			return &NotEphemeralError{Project: project, Stack: name}
		}
		return nil
	}
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return err
	}
	known, err := engine.StackNames(ctx, ws, project)
	if err != nil {
		return err
	}
	if !slices.Contains(known, name) {
		return &engine.UnknownStackError{Project: project, Stack: name, Known: known}
	}
	tags, err := ws.ListTags(ctx, name)
	if err != nil {
		return fmt.Errorf("automation: tags of %s: %w", name, err)
	}
	if tags[TagEphemeral] != "true" {
		return &NotEphemeralError{Project: project, Stack: name}
	}
	return nil
}

// storedTags reads an existing stack's tags straight from the backend's
// store, with no pulumi process; ok is false when the store cannot answer
// (a backend without a driver or the project-scoped layout, or a stack it
// does not know), and the caller asks Pulumi.
func storedTags(ctx context.Context, opc *engine.Operation, project, name string) (map[string]string, bool) {
	s, ok := opc.Holding(ctx, project, name)
	if !ok {
		return nil, false
	}
	tags, err := s.StackTags(ctx, project, name)
	return tags, err == nil
}

// setTags sets tags on an open stack: in one write to the backend's store
// when it can (the same file Pulumi keeps them in), else one pulumi process
// per tag.
func setTags(ctx context.Context, opc *engine.Operation, st *stack.Stack, tags map[string]string) error {
	if s, err := opc.State(ctx); err == nil {
		err := s.SetStackTags(ctx, st.Project(), st.Name(), tags)
		if err == nil || !errors.Is(err, statestore.ErrNotScoped) {
			return err
		}
	}
	for k, v := range tags {
		if err := st.Auto().SetTag(ctx, k, v); err != nil {
			return err
		}
	}
	return nil
}

// DestroyEphemeral destroys and removes one ephemeral environment, with
// everything the backend kept of it (see purgeEphemeral). A stack
// the backend does not hold is refused with an *UnknownStackError, and one
// without the ephemeral tag with a *NotEphemeralError; neither is touched.
func Destroy(ctx context.Context, e *engine.Engine, project, name string) (res *outcome.Result, err error) {
	ctx, o := e.Observe(ctx, "ephemeral-destroy", engine.Program{Project: project, Stack: name})
	defer func() { o.End(res, err) }()
	if err := requireEphemeral(ctx, e, o.Operation, project, name); err != nil {
		return nil, err
	}
	st, err := stack.Select(ctx, e, engine.Program{Project: project, Stack: name, Run: stack.NoProgram})
	if err != nil {
		return nil, err
	}
	res, err = st.DestroyStateOnly(ctx, o.Operation)
	if err == nil {
		err = purge(ctx, e, o.Operation, project, name)
	}
	return res, err
}

// purgeEphemeral removes what is left of an ephemeral environment once its
// stack was destroyed and removed: Pulumi's backups and update history and
// Slipway's release and run records in the backend (statestore.Purge), and
// its workspace in the engine's directory. Nothing of it remains, so the
// operation that removed it writes no run record either.
func purge(ctx context.Context, e *engine.Engine, opc *engine.Operation, project, name string) error {
	engine.MarkPurged(ctx)
	s, _, err := opc.Records(ctx)
	if err != nil {
		return err
	}
	if _, err := s.Purge(ctx, project, name); err != nil {
		return fmt.Errorf("automation: removing what the backend keeps of ephemeral environment %s: %w", name, err)
	}
	return os.RemoveAll(filepath.Join(e.Dir(), "workspaces", project, name))
}

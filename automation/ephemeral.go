package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

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
func (e *Engine) CreateEphemeral(ctx context.Context, prog Program, key string, ttl time.Duration, opts ...optup.Option) (res *outcome.Result, eph *Ephemeral, err error) {
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
	if err := e.requireEphemeral(ctx, o.Operation, prog.Project, prog.Stack); err != nil && !IsUnknownStack(err) {
		return nil, nil, err
	}
	st, err := e.UpsertStack(ctx, prog)
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
func (e *Engine) Ephemerals(ctx context.Context, project string) ([]Ephemeral, error) {
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return nil, err
	}
	names, err := StackNames(ctx, ws, project)
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
func (e *Engine) GC(ctx context.Context, project string, now time.Time, concurrency int) ([]GCResult, error) {
	// One operation: every destroy uses the store GC opens.
	ctx, opc, end := e.Begin(ctx)
	defer end()
	all, err := e.Ephemerals(ctx, project)
	if err != nil {
		return nil, err
	}
	var expired []Program
	byStack := map[string]Ephemeral{}
	for _, eph := range all {
		if eph.Expires.Before(now) {
			expired = append(expired, Program{Project: project, Stack: eph.Stack, Run: noProgram})
			byStack[eph.Stack] = eph
		}
	}
	var out []GCResult
	// The tag is checked again just before each destroy.
	gcDestroy := Op{Name: "ephemeral-destroy", Run: func(ctx context.Context, s *Stack) (*outcome.Result, error) {
		if err := e.requireEphemeral(ctx, opc, s.project, s.name); err != nil {
			return nil, err
		}
		res, err := s.DestroyStateOnly(ctx, opc)
		if err == nil {
			err = e.purgeEphemeral(ctx, opc, s.project, s.name)
		}
		return res, err
	}}
	for _, r := range e.Each(ctx, expired, gcDestroy, concurrency) {
		g := GCResult{Ephemeral: byStack[r.Stack], Result: r.Result, Err: r.Err, Error: r.Error}
		out = append(out, g)
	}
	e.log.InfoContext(ctx, "gc", "project", project, "ephemeral", len(all), "expired", len(expired))
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
func (e *Engine) requireEphemeral(ctx context.Context, opc *Operation, project, stack string) error {
	if tags, ok := storedTags(ctx, opc, project, stack); ok {
		if tags[TagEphemeral] != "true" {
			return &NotEphemeralError{Project: project, Stack: stack}
		}
		return nil
	}
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return err
	}
	known, err := StackNames(ctx, ws, project)
	if err != nil {
		return err
	}
	if !slices.Contains(known, stack) {
		return &UnknownStackError{Project: project, Stack: stack, Known: known}
	}
	tags, err := ws.ListTags(ctx, stack)
	if err != nil {
		return fmt.Errorf("automation: tags of %s: %w", stack, err)
	}
	if tags[TagEphemeral] != "true" {
		return &NotEphemeralError{Project: project, Stack: stack}
	}
	return nil
}

// storedTags reads an existing stack's tags straight from the backend's
// store, with no pulumi process; ok is false when the store cannot answer
// (a backend without a driver or the project-scoped layout, or a stack it
// does not know), and the caller asks Pulumi.
func storedTags(ctx context.Context, opc *Operation, project, stack string) (map[string]string, bool) {
	s, ok := opc.Holding(ctx, project, stack)
	if !ok {
		return nil, false
	}
	tags, err := s.StackTags(ctx, project, stack)
	return tags, err == nil
}

// setTags sets tags on an open stack: in one write to the backend's store
// when it can (the same file Pulumi keeps them in), else one pulumi process
// per tag.
func setTags(ctx context.Context, opc *Operation, st *Stack, tags map[string]string) error {
	if s, err := opc.State(ctx); err == nil {
		err := s.SetStackTags(ctx, st.project, st.name, tags)
		if err == nil || !errors.Is(err, statestore.ErrNotScoped) {
			return err
		}
	}
	for k, v := range tags {
		if err := st.stack.SetTag(ctx, k, v); err != nil {
			return err
		}
	}
	return nil
}

// DestroyEphemeral destroys and removes one ephemeral environment, with
// everything the backend kept of it (see purgeEphemeral). A stack
// the backend does not hold is refused with an *UnknownStackError, and one
// without the ephemeral tag with a *NotEphemeralError; neither is touched.
func (e *Engine) DestroyEphemeral(ctx context.Context, project, stack string) (res *outcome.Result, err error) {
	ctx, o := e.Observe(ctx, "ephemeral-destroy", Program{Project: project, Stack: stack})
	defer func() { o.End(res, err) }()
	if err := e.requireEphemeral(ctx, o.Operation, project, stack); err != nil {
		return nil, err
	}
	st, err := e.SelectStack(ctx, Program{Project: project, Stack: stack, Run: noProgram})
	if err != nil {
		return nil, err
	}
	res, err = st.DestroyStateOnly(ctx, o.Operation)
	if err == nil {
		err = e.purgeEphemeral(ctx, o.Operation, project, stack)
	}
	return res, err
}

// purgeEphemeral removes what is left of an ephemeral environment once its
// stack was destroyed and removed: Pulumi's backups and update history and
// Slipway's release and run records in the backend (statestore.Purge), and
// its workspace in the engine's directory. Nothing of it remains, so the
// operation that removed it writes no run record either.
func (e *Engine) purgeEphemeral(ctx context.Context, opc *Operation, project, stack string) error {
	if o, ok := ctx.Value(obsKey{}).(*Observation); ok {
		o.purged.Store(true)
	}
	s, _, err := opc.Records(ctx)
	if err != nil {
		return err
	}
	if _, err := s.Purge(ctx, project, stack); err != nil {
		return fmt.Errorf("automation: removing what the backend keeps of ephemeral environment %s: %w", stack, err)
	}
	return os.RemoveAll(filepath.Join(e.dir, "workspaces", project, stack))
}

// destroyStateOnly destroys and removes a stack opened without its program
// (noProgram): the Kubernetes provider is resolved first when the state
// holds a Kubernetes provider, since no program's Plugins say so.
func (s *Stack) DestroyStateOnly(ctx context.Context, opc *Operation) (*outcome.Result, error) {
	if s.engine != nil {
		// The state straight from the backend's store when it has one (no
		// pulumi process), else exported by the engine.
		store, err := opc.State(ctx)
		if err != nil {
			store = nil
		}
		dep, _, err := s.deployment(ctx, store)
		if err != nil {
			return nil, s.wrap("destroy", err)
		}
		if holdsKubernetesProvider(dep) {
			if err := s.engine.Kubernetes(ctx); err != nil {
				return nil, err
			}
		}
	}
	return s.RunDestroy(ctx, OpConfig{Remove: true})
}

// holdsKubernetesProvider reports whether an exported deployment holds a
// Kubernetes provider resource (so destroying it needs the provider plugin).
// An unreadable deployment counts as holding one: resolving is harmless.
func holdsKubernetesProvider(deployment []byte) bool {
	var d struct {
		Resources []struct {
			Type string `json:"type"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(deployment, &d); err != nil {
		return true
	}
	for _, r := range d.Resources {
		if r.Type == kubernetesProviderType {
			return true
		}
	}
	return false
}

// noProgram stands in for a program when only the stack's state matters (destroy).
func noProgram(*pulumi.Context) error {
	return errors.New("automation: this stack was opened for destroy only")
}

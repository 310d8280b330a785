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

// LastKnownGood is what Deploy records after every successful,
// smoke-checked update: enough to restore it.
type LastKnownGood struct {
	Project    string    `json:"project"`
	Stack      string    `json:"stack"`
	Version    string    `json:"version"`
	Recorded   time.Time `json:"recorded"`
	Checkpoint string    `json:"checkpoint"`
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

func (e *Engine) lkgPath(project, stack string) string {
	return filepath.Join(e.dir, "lkg", project, stack+".json")
}

// LastKnownGood returns the recorded last-known-good of a stack, or nil.
func (e *Engine) LastKnownGood(project, stack string) (*LastKnownGood, error) {
	b, err := os.ReadFile(e.lkgPath(project, stack))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l LastKnownGood
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("automation: last-known-good of %s: %w", stack, err)
	}
	return &l, nil
}

// record saves the stack's checkpoint and the release as last-known-good.
func (e *Engine) record(ctx context.Context, st *Stack, rel Release) (*LastKnownGood, error) {
	dep, err := st.stack.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("automation: exporting the checkpoint: %w", err)
	}
	path := e.lkgPath(st.project, st.name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	cp := filepath.Join(filepath.Dir(path), st.name+".checkpoint.json")
	b, _ := json.Marshal(dep)
	if err := writeAtomic(cp, b); err != nil {
		return nil, err
	}
	l := &LastKnownGood{Project: st.project, Stack: st.name, Version: rel.Version, Recorded: time.Now().UTC(), Checkpoint: cp}
	b, _ = json.MarshalIndent(l, "", "  ")
	return l, writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// recordUp records a successful up of st as a release.
func (e *Engine) recordUp(ctx context.Context, st *Stack) error {
	_, err := e.record(ctx, st, Release{Version: st.version})
	return err
}

// Deploy applies a release: Up, then the smoke check. When both pass the
// release becomes the last-known-good. When either fails, Deploy re-applies
// the last-known-good (rebuilt by lookup from its version) unless NoRollback
// is given, and returns a ReleaseError saying what was restored.
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
	d.Result, err = st.Up(ctx, append(slices.Clone(c.opts), func(o *opConfig) { o.noRecord = true })...)
	if err == nil && rel.Smoke != nil {
		if serr := rel.Smoke(ctx, d.Result); serr != nil {
			err = fmt.Errorf("smoke check: %w", serr)
		}
	}
	if err == nil {
		_, err := e.record(ctx, st, rel)
		return d, err
	}
	rerr := &ReleaseError{Version: rel.Version, Cause: err}
	if c.noRollback || IsPolicyBlocked(err) {
		return d, rerr // a blocked release changed nothing
	}
	lkg, lerr := e.LastKnownGood(rel.Program.Project, rel.Program.Stack)
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
		d.Rollback, lerr = st.Up(ctx, c.opts...)
	}
	if lerr != nil {
		rerr.RollbackErr = lerr
		return d, rerr
	}
	d.RolledBack, d.Restored = true, lkg
	e.log.Warn("rolled back", "stack", rel.Program.Stack, "failed", short(rel.Version), "restored", short(lkg.Version), "cause", err)
	return d, rerr
}

// Rollback re-applies the last-known-good of a stack.
func (e *Engine) Rollback(ctx context.Context, project, stack string, lookup func(version string) (Program, error), opts ...Option) (*Result, *LastKnownGood, error) {
	lkg, err := e.LastKnownGood(project, stack)
	if err != nil {
		return nil, nil, err
	}
	if lkg == nil {
		return nil, nil, fmt.Errorf("automation: stack %s has no last-known-good yet; deploy a release that passes its smoke check first", stack)
	}
	prog, err := lookup(lkg.Version)
	if err != nil {
		return nil, lkg, err
	}
	st, err := e.SelectStack(ctx, prog)
	if err != nil {
		return nil, lkg, err
	}
	res, err := st.Up(ctx, opts...)
	return res, lkg, err
}

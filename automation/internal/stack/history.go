package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"

	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// record stores a release of st with the stack's exported checkpoint, and
// the revision it applied and that revision's commit time when known.
func Record(ctx context.Context, e *engine.Engine, opc *engine.Operation, st *Stack, version, status, cause, revision string, committed time.Time) (*releases.Record, error) {
	s, backend, err := opc.Records(ctx)
	if err != nil {
		return nil, err
	}
	state := s
	if !backend {
		state = nil // it holds no checkpoint
	}
	cp, err := exportCheckpoint(ctx, e, state, st)
	if err != nil {
		return nil, fmt.Errorf("automation: exporting the checkpoint of %s for its release record: %w", st.name, err)
	}
	r := releases.Record{ID: statestore.NewReleaseName(time.Now()), Project: st.project, Stack: st.name, Version: version,
		Status: status, Recorded: time.Now().UTC(), Cause: short(cause), Revision: revision}
	if !committed.IsZero() {
		r.CommitTime = committed.UTC()
	}
	if status != releases.Failed {
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
		e.Logger().Warn("pruning the release history failed", "stack", st.name, "error", err)
	}
	return &r, nil
}

// exportCheckpoint returns the stack's deployment as `pulumi stack export`
// prints it, secrets encrypted. backend is the backend's store (nil when
// it has no driver): the checkpoint is read from it directly, with no CLI
// process; otherwise the engine exports it.
func exportCheckpoint(ctx context.Context, e *engine.Engine, backend *statestore.Store, st *Stack) ([]byte, error) {
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
	env := []string{"PULUMI_HOME=" + e.PulumiHome()}
	for k, v := range e.Env() {
		env = append(env, k+"="+v)
	}
	out, stderr, _, err := e.Command().Run(ctx, st.stack.Workspace().WorkDir(), nil, nil, nil, env, "stack", "export", "--stack", st.name)
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
	id, _, err := engine.StackLastUpdate(ctx, st.stack)
	if err != nil {
		return ""
	}
	return id
}

// recordUp records a successful up of st as a release.
func recordUp(ctx context.Context, e *engine.Engine, opc *engine.Operation, st *Stack, revision string, committed time.Time) error {
	_, err := Record(ctx, e, opc, st, st.version, releases.Applied, "", revision, committed)
	return err
}

// short cuts a version for a release record's cause.
func short(v string) string {
	if len(v) > 60 {
		return v[:57] + "..."
	}
	return v
}

// setLastUpdate records the update an up ran ("" when unknown).
func (s *Stack) setLastUpdate(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUpdate = id
}

// updateID returns the update the last up ran, "" when unknown.
func (s *Stack) updateID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUpdate
}

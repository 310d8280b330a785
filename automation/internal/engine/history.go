package engine

import (
	"context"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/opthistory"

	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/statestore"
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
	return e.ReleasesIn(ctx, opc, project, stack)
}

// ReleasesIn is Releases in operation opc.
func (e *Engine) ReleasesIn(ctx context.Context, opc *Operation, project, stack string) ([]releases.Record, error) {
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

// StackLastUpdate identifies the stack's newest update (by its start time: DIY
// backends do not number updates) and reports whether it succeeded.
func StackLastUpdate(ctx context.Context, s auto.Stack) (string, bool, error) {
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

// LastUpdate identifies a stack's newest update and its outcome.
func (e *Engine) LastUpdate(ctx context.Context, project, stack string) (string, bool, error) {
	ws, err := e.Workspace(ctx, project)
	if err != nil {
		return "", false, err
	}
	s, err := auto.SelectStack(ctx, stack, ws)
	if err != nil {
		return "", false, err
	}
	return StackLastUpdate(ctx, s)
}

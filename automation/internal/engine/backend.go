package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// OpenBackend opens the backend's store; tests replace it to count opens.
var OpenBackend = statestore.Open

// Operation is what one operation of the engine opens once and hands down
// to every helper: the store of Slipway's records, which is the backend's
// own store when the backend has a driver (file, S3), else a store in the
// engine's directory. It is opened on first use and closed when the
// operation ends. Operations nested in another (Promote's stages, GC's
// destroys, CreateEphemeral's up) use the outer operation's.
type Operation struct {
	// backend and env open the backend's store; dir is the engine's
	// directory (for the records of a backend without a driver).
	backend, dir string
	env          map[string]string
	log          *slog.Logger
	once         sync.Once
	// store and err are the outcome of the one open of the backend's store
	// (err unwrapped: statestore.ErrUnsupported for a backend without a
	// driver). local and localErr are the records store in the engine's
	// directory that stands in for it then, opened on first use.
	store     *statestore.Store
	err       error
	localOnce sync.Once
	local     *statestore.Store
	localErr  error
}

// newOperation returns an operation context of the engine's backend.
func (e *Engine) newOperation() *Operation {
	if e == nil {
		return &Operation{}
	}
	return &Operation{backend: e.backend, dir: e.dir, env: e.env, log: e.log}
}

// OperationOn returns an operation context of a backend alone, for a
// stack opened without an engine.
func OperationOn(backend string) *Operation { return &Operation{backend: backend} }

// opKey marks a context inside an operation.
type opKey struct{}

// begin starts an operation unless ctx is already inside one; end closes
// what the operation opened (a no-opc for a nested one).
func (e *Engine) Begin(ctx context.Context) (_ context.Context, opc *Operation, end func()) {
	if opc, ok := ctx.Value(opKey{}).(*Operation); ok {
		return ctx, opc, func() {}
	}
	opc = e.newOperation()
	return context.WithValue(ctx, opKey{}, opc), opc, opc.Close
}

// operationOf returns the operation ctx is in, or, for a helper reached
// outside any operation, a fresh one that end closes.
func (e *Engine) OperationOf(ctx context.Context) (opc *Operation, end func()) {
	if opc, ok := ctx.Value(opKey{}).(*Operation); ok {
		return opc, func() {}
	}
	opc = e.newOperation()
	return opc, opc.Close
}

// state returns the backend's own store, which holds the stacks'
// checkpoints, locks and tags, opened once per operation; the error is the
// backend's, unwrapped (statestore.ErrUnsupported for a backend without a
// driver).
func (opc *Operation) State(ctx context.Context) (*statestore.Store, error) {
	opc.once.Do(func() { opc.store, opc.err = OpenBackend(ctx, opc.backend, opc.env) })
	return opc.store, opc.err
}

// holding returns the backend's own store when it holds the stack in the
// project-scoped layout; false when it does not, or cannot tell.
func (opc *Operation) Holding(ctx context.Context, project, stack string) (*statestore.Store, bool) {
	s, err := opc.State(ctx)
	if err != nil {
		return nil, false
	}
	ok, err := s.Exists(ctx, project, stack)
	return s, err == nil && ok
}

// records returns where the engine keeps Slipway's records (release and
// run history, approvals): the backend's own store when it has a driver
// (file, S3), else a store in the engine's directory; backend reports
// which.
func (opc *Operation) Records(ctx context.Context) (s *statestore.Store, backend bool, err error) {
	s, err = opc.State(ctx)
	if errors.Is(err, statestore.ErrUnsupported) {
		opc.localOnce.Do(func() {
			d, err := statestore.FileDriver(filepath.Join(opc.dir, "releases"))
			if err != nil {
				opc.localErr = err
				return
			}
			opc.local = statestore.New(d)
		})
		return opc.local, false, opc.localErr
	}
	if err != nil {
		return nil, false, fmt.Errorf("automation: opening backend %s for release history: %w", mask.URL(opc.backend), err)
	}
	return s, true, nil
}

// close closes what the operation opened.
func (opc *Operation) Close() {
	for _, s := range []*statestore.Store{opc.store, opc.local} {
		if s != nil {
			closeStore(s, opc.log)
		}
	}
}

// closeStore closes a store opened for one operation; a failure to close
// changes nothing the operation did, so it is logged.
func closeStore(s *statestore.Store, log *slog.Logger) {
	if err := s.Close(); err != nil && log != nil {
		log.Warn("closing the backend's state store failed", "error", err)
	}
}

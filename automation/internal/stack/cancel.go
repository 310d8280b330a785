package stack

import (
	"context"
	"errors"
)

// canceledError is the error of an operation that failed because its
// context ended: errors.Is matches both the engine's failure and
// context.Canceled (or context.DeadlineExceeded), and errors.As still
// finds the *OpError.
type canceledError struct {
	err, cause error
}

func (e *canceledError) Error() string { return e.err.Error() + " (" + e.cause.Error() + ")" }

func (e *canceledError) Unwrap() []error { return []error{e.err, e.cause} }

// canceled marks err as caused by ctx ending, when it did: the engine,
// interrupted by the cancellation, only reports that it exited with an
// error.
func canceled(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return &canceledError{err: err, cause: ctx.Err()}
}

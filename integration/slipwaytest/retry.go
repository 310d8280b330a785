package slipwaytest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// RetryError is what Retry returns when fn never succeeded.
// Get it with errors.As (a *RetryError).
type RetryError struct {
	// Attempts is the number of times fn ran.
	Attempts int
	// Elapsed is the time from the first attempt to giving up.
	Elapsed time.Duration
	// Last is fn's last error (nil when the context ended before any attempt).
	Last error
	// Ctx is the context's error when it ended the retries, else nil.
	Ctx error
}

// Error implements error.
func (e *RetryError) Error() string {
	why := fmt.Sprintf("after %d attempt(s) in %s", e.Attempts, e.Elapsed.Round(time.Millisecond))
	if e.Ctx != nil {
		why += " (" + e.Ctx.Error() + ")"
	}
	if e.Last == nil {
		return "slipwaytest: gave up " + why
	}
	return fmt.Sprintf("slipwaytest: gave up %s; last error: %v", why, e.Last)
}

// Unwrap returns the last error and the context's error, for errors.Is
// and errors.As.
func (e *RetryError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Last, e.Ctx} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Retry calls fn until it returns nil, at most attempts times (without
// limit when attempts < 1), waiting interval between calls, and stops early
// when ctx ends. It returns nil on success, else a *RetryError carrying the
// attempt count and fn's last error. fn gets ctx, so a call can be bounded
// by the same deadline.
func Retry(ctx context.Context, attempts int, interval time.Duration, fn func(ctx context.Context) error) error {
	start := time.Now()
	var last error
	n := 0
	for attempts < 1 || n < attempts {
		if err := ctx.Err(); err != nil {
			return &RetryError{Attempts: n, Elapsed: time.Since(start), Last: last, Ctx: err}
		}
		n++
		if last = fn(ctx); last == nil {
			return nil
		}
		if attempts >= 1 && n == attempts {
			break
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return &RetryError{Attempts: n, Elapsed: time.Since(start), Last: last, Ctx: ctx.Err()}
		case <-timer.C:
		}
	}
	return &RetryError{Attempts: n, Elapsed: time.Since(start), Last: last}
}

// Eventually calls fn every interval until it returns nil, for at most
// timeout (and no longer than ctx lives), and fails the test with the
// attempt count and fn's last error when it never does.
func Eventually(t testing.TB, ctx context.Context, timeout, interval time.Duration, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := Retry(ctx, 0, interval, fn); err != nil {
		var re *RetryError
		if errors.As(err, &re) && errors.Is(re.Ctx, context.DeadlineExceeded) {
			t.Fatalf("slipwaytest: condition not met within %s (%d attempt(s)); last error: %v", timeout, re.Attempts, re.Last)
		}
		t.Fatalf("%v", err)
	}
}

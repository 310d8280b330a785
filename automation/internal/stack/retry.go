package stack

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/statestore"

	"github.com/slipwayhq/slipway/automation/outcome"
)

// transientMarks are failures of the network or of a busy API server that
// a later attempt can get past. Anything else (a compile error, a policy
// violation, a validation error, a lock held by a live update) is not retried.
var transientMarks = []string{
	"connection refused",
	"connection reset by peer",
	"i/o timeout",
	"tls handshake timeout",
	"the server is currently unable to handle the request",
	"etcdserver: request timed out",
	"etcdserver: leader changed",
	"http2: client connection lost",
	"too many requests",
	"throttling: rate exceeded",
	"requestlimitexceeded",
	"503 service unavailable",
	"502 bad gateway",
	"unexpected eof",
	"no route to host",
}

// IsTransient reports whether err looks like a transient failure worth
// retrying. Concurrent-update and policy errors are never transient.
func IsTransient(err error) bool {
	if err == nil || statestore.IsStackLocked(err) || engine.IsPolicyBlocked(err) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, m := range transientMarks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// retry runs fn until it succeeds, fails for good, runs out of attempts or
// ctx ends. before runs ahead of every retry (to recover state).
func retry(ctx context.Context, attempts int, base time.Duration, before func() error, fn func() (*outcome.Result, error)) (*outcome.Result, error) {
	if attempts < 1 {
		attempts = 1
	}
	wait := base
	var res *outcome.Result
	var err error
	for i := 1; ; i++ {
		res, err = fn()
		err = canceled(ctx, err)
		if err == nil || i >= attempts || !IsTransient(err) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(wait):
		}
		wait *= 2
		if before != nil {
			if berr := before(); berr != nil {
				return res, errors.Join(err, berr)
			}
		}
	}
}

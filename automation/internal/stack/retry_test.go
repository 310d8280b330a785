package stack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsTransient_Classifies(t *testing.T) {
	for msg, want := range map[string]bool{
		`Get "https://127.0.0.1:6443/api": dial tcp 127.0.0.1:6443: connect: connection refused`: true,
		"net/http: TLS handshake timeout":                          true,
		"the server is currently unable to handle the request":     true,
		"etcdserver: request timed out":                            true,
		"error: update failed: 1 error: Throttling: Rate exceeded": true,
		"error: program failed: undefined: foo":                    false,
		"Args.CIDR is too small":                                   false,
	} {
		assert.Equal(t, want, IsTransient(errors.New(msg)), msg)
	}
	assert.False(t, IsTransient(&engine.PolicyBlockedError{Op: "up"}), "policy violations are final")
	assert.False(t, IsTransient(context.Canceled))
	assert.False(t, IsTransient(nil))
}

func TestRetry_RetriesOnlyTransientFailures(t *testing.T) {
	ctx := context.Background()
	calls, recovers := 0, 0
	res, err := retry(ctx, 4, time.Millisecond, func() error { recovers++; return nil }, func() (*outcome.Result, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("dial tcp: connection refused")
		}
		return &outcome.Result{Operation: "up"}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, "up", res.Operation)
	assert.Equal(t, 3, calls)
	assert.Equal(t, 2, recovers, "state is recovered before every retry")

	calls = 0
	_, err = retry(ctx, 4, time.Millisecond, nil, func() (*outcome.Result, error) { calls++; return nil, errors.New("compile error") })
	require.Error(t, err)
	assert.Equal(t, 1, calls, "a permanent failure is not retried")

	calls = 0
	_, err = retry(ctx, 3, time.Millisecond, nil, func() (*outcome.Result, error) { calls++; return nil, errors.New("i/o timeout") })
	require.ErrorContains(t, err, "i/o timeout")
	assert.Equal(t, 3, calls, "attempts are bounded")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	_, err = retry(cctx, 5, time.Hour, nil, func() (*outcome.Result, error) { calls++; return nil, errors.New("i/o timeout") })
	require.Error(t, err)
	assert.Equal(t, 1, calls, "a cancelled context stops the backoff")
}

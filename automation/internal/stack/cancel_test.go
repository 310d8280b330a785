package stack

import (
	"context"
	"errors"
	"testing"

	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetry_ReportsTheCancellation(t *testing.T) {
	engineErr := &OpError{Op: "up", Stack: "dev", Err: errors.New("failed to run update: exit status 1")}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, stop := context.WithTimeout(context.Background(), 0)
	defer stop()
	<-expired.Done()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline", expired, context.DeadlineExceeded},
		{"live", context.Background(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			_, err := retry(tc.ctx, 3, 0, nil, func() (*outcome.Result, error) { calls++; return nil, engineErr })
			require.Error(t, err)
			assert.Equal(t, 1, calls, "a non-transient failure is not retried")
			var op *OpError
			require.ErrorAs(t, err, &op, "the engine's error is still there")
			if tc.want == nil {
				assert.Same(t, engineErr, err, "an error of a live context is left alone")
				return
			}
			assert.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "exit status 1 ("+tc.want.Error()+")")
		})
	}
	_, err := retry(cancelled, 1, 0, nil, func() (*outcome.Result, error) { return nil, nil })
	assert.NoError(t, err, "success stays success")
}

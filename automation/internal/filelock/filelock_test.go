package filelock

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLock_WaitsForTheHolderThenTakesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path, 0o600, time.Millisecond, nil)
	require.NoError(t, err)

	// Held: a second taker waits, is told once, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	told := 0
	_, err = Lock(ctx, path, 0o600, time.Millisecond, func() { told++ })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, told)

	// Released: taken at once, without waiting.
	unlock()
	again, err := Lock(context.Background(), path, 0o600, time.Millisecond, func() { t.Error("waited for a free lock") })
	require.NoError(t, err)
	again()
}

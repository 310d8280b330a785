package servecmd

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "72h": 72 * time.Hour, "90m": 90 * time.Minute} {
		got, err := parseWindow(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "30", "month", "-1d", "0d", "-5h"} {
		_, err := parseWindow(in)
		var ie *app.InputError
		require.True(t, errors.As(err, &ie), "%q: %v", in, err)
		assert.Contains(t, err.Error(), "--since", in)
		assert.Contains(t, err.Error(), "30d", in)
	}
}

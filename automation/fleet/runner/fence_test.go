package runner

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRenewDeadline_InvalidIsRefusedNamingIt: a RenewDeadline not shorter
// than LeaseDuration (or under a quarter of it) is refused, naming it.
func TestRenewDeadline_InvalidIsRefusedNamingIt(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{15 * time.Second, 20 * time.Second, time.Second} {
		_, err := New(cluster.Config, Options{LeaseDuration: 15 * time.Second, RenewDeadline: d, WorkDir: t.TempDir()})
		require.Error(t, err, "%s", d)
		assert.Contains(t, err.Error(), "Options.RenewDeadline "+d.String())
		assert.Contains(t, err.Error(), "use e.g. 10s")
	}
	r, err := New(cluster.Config, Options{LeaseDuration: 15 * time.Second, WorkDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, r.o.RenewDeadline, "default: 2/3 of LeaseDuration")
}

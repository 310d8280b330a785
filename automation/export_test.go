package automation

import (
	"context"
	"sync/atomic"

	"github.com/slipwayhq/slipway/automation/internal/engine"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// CountBackendOpens counts the opens of the backend's store until the
// returned restore is called.
func CountBackendOpens() (n *atomic.Int64, restore func()) {
	n = new(atomic.Int64)
	old := engine.OpenBackend
	engine.OpenBackend = func(ctx context.Context, url string, env map[string]string) (*statestore.Store, error) {
		n.Add(1)
		return old(ctx, url, env)
	}
	return n, func() { engine.OpenBackend = old }
}

package localk8s

import (
	"context"
	"testing"
	"time"
)

// Start starts a cluster for a test and stops it in t.Cleanup. Building the
// binaries on a cold machine can take a while; progress goes to the test log.
// The test fails (it never skips) when the cluster cannot start.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	opts = append([]Option{WithLog(testWriter{t})}, opts...)
	c, err := StartCluster(ctx, opts...)
	if err != nil {
		t.Fatalf("localk8s: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("localk8s: stop: %v", err)
		}
	})
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

package integration

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/stacks"
)

// s3Server starts an S3-compatible server (gofakes3, in memory) on
// 127.0.0.1 with one bucket and returns the Pulumi backend URL for it.
func s3Server(t *testing.T, bucket string) (string, *s3mem.Backend) {
	t.Helper()
	be := s3mem.New()
	require.NoError(t, be.CreateBucket(bucket))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: gofakes3.New(be, gofakes3.WithTimeSkewLimit(0)).Server(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "s3://" + bucket + "?endpoint=http://" + l.Addr().String() + "&use_path_style=true&disable_https=true&region=us-east-1", be
}

func s3Engine(t *testing.T, url string) *automation.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()), automation.WithBackend(url),
		automation.WithEnv(map[string]string{"AWS_ACCESS_KEY_ID": "slipway", "AWS_SECRET_ACCESS_KEY": "slipway-test-secret",
			"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}))
	require.NoError(t, err)
	return e
}

// TestS3Backend_RoundTripsStateAndLocks keeps the state of a real environment
// in an S3-compatible server on loopback: up, refresh, clean preview,
// concurrent-update lock, destroy, stack removal.
func TestS3Backend_RoundTripsStateAndLocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	url, be := s3Server(t, "slipway-state")
	e := s3Engine(t, url)
	prog := program(t, env("s3", stacks.Dev, "in-s3"))
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	_, err = st.Up(ctx)
	require.NoError(t, err)
	assert.Equal(t, "in-s3", greeting(t, "slipway-s3"))

	objs, err := be.ListBucket("slipway-state", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	require.NoError(t, err)
	var keys []string
	for _, o := range objs.Contents {
		keys = append(keys, o.Key)
	}
	assert.Contains(t, strings.Join(keys, " "), ".pulumi/stacks/slipway/s3.json", "the checkpoint lives in the bucket")

	// A second engine (another workspace, same bucket) sees the same state.
	other := s3Engine(t, url)
	st2, err := other.Stack(ctx, prog)
	require.NoError(t, err)
	pre, err := st2.Preview(ctx, automation.ExpectNoChanges())
	require.NoError(t, err, "the state round-trips through S3")
	assert.Zero(t, pre.Changes())
	_, err = st2.Refresh(ctx, automation.ExpectNoChanges())
	require.NoError(t, err)

	// Locking: while one update runs, another on the same stack gets a lock error.
	started, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var firstErr error
	go func() {
		defer close(done)
		slow := program(t, env("s3", stacks.Dev, "changed"))
		run := slow.Run
		slow.Run = func(ctx *pulumi.Context) error { time.Sleep(3 * time.Second); return run(ctx) } // hold the lock a while
		changed, err := e.UpsertStack(ctx, slow)
		if err != nil {
			firstErr = err
			return
		}
		_, firstErr = changed.Up(ctx, automation.OnEvent(func(ev events.EngineEvent) {
			if ev.ResourcePreEvent != nil {
				once.Do(func() { close(started) })
			}
		}))
	}()
	select {
	case <-started:
	case <-done:
		t.Fatalf("the first update ended early: %v", firstErr)
	}
	_, err = st2.Up(ctx)
	<-done
	require.NoError(t, firstErr)
	require.Error(t, err)
	assert.True(t, automation.IsConcurrentUpdate(err), "%v", err)

	_, err = st.Destroy(ctx, automation.RemoveStack())
	require.NoError(t, err)
	objs, err = be.ListBucket("slipway-state", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	require.NoError(t, err)
	for _, o := range objs.Contents {
		assert.NotEqual(t, ".pulumi/stacks/slipway/s3.json", o.Key, "the stack is removed from the bucket")
	}
}

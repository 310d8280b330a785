package integration

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
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
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/optrefresh"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
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
		automation.WithPassphrase("slipway-test"), automation.WithEnv(map[string]string{"AWS_ACCESS_KEY_ID": "slipway", "AWS_SECRET_ACCESS_KEY": "slipway-test-secret",
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
	st2, err := other.SelectStack(ctx, prog)
	require.NoError(t, err)
	pre, err := st2.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err, "the state round-trips through S3")
	assert.Zero(t, pre.Changes())
	_, err = st2.Refresh(ctx, optrefresh.ExpectNoChanges())
	require.NoError(t, err)

	// Locking: while one update holds the stack (its program waits until
	// the second update has been refused), another on the same stack gets
	// a lock error.
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	var firstErr error
	go func() {
		defer close(done)
		slow := program(t, env("s3", stacks.Dev, "changed"))
		run := slow.Run
		slow.Run = func(ctx *pulumi.Context) error { <-release; return run(ctx) } // hold the lock
		changed, err := e.UpsertStack(ctx, slow)
		if err != nil {
			firstErr = err
			return
		}
		_, firstErr = changed.Up(ctx, optup.OnEvent(func(ev events.EngineEvent) {
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
	close(release)
	<-done
	require.NoError(t, firstErr)
	require.Error(t, err)
	assert.True(t, automation.IsStackLocked(err), "%v", err)

	_, err = st.Destroy(ctx, optdestroy.RemoveStack())
	require.NoError(t, err)
	objs, err = be.ListBucket("slipway-state", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	require.NoError(t, err)
	for _, o := range objs.Contents {
		assert.NotEqual(t, ".pulumi/stacks/slipway/s3.json", o.Key, "the stack is removed from the bucket")
	}
}

// deadPID returns the PID of a process of this host that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	require.NoError(t, c.Run())
	return c.Process.Pid
}

// TestRecover_StaleLockAndBrokenCheckpointOnEachBackend plants what a
// killed update can leave (its lock, a checkpoint cut mid-write) plus a
// lock of another host, on the file backend and on the S3-compatible
// server: recovery removes the dead owner's lock, refuses to touch the
// other host's until WithForceUnlock, then restores the checkpoint from its
// backup, and the state matches the cluster again.
func TestRecover_StaleLockAndBrokenCheckpointOnEachBackend(t *testing.T) {
	s3Env := map[string]string{"AWS_ACCESS_KEY_ID": "slipway", "AWS_SECRET_ACCESS_KEY": "slipway-test-secret", "AWS_REGION": "us-east-1"}
	for _, tc := range []struct {
		name    string
		backend func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
		{"s3", func(t *testing.T) string { url, _ := s3Server(t, "slipway-state"); return url }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			url, home := tc.backend(t), t.TempDir()
			engine := func(opts ...automation.EngineOption) *automation.Engine {
				e, err := automation.New(ctx, append([]automation.EngineOption{automation.WithDir(t.TempDir()), automation.WithPulumiHome(home),
					automation.WithBackend(url), automation.WithPassphrase("slipway-test"), automation.WithEnv(s3Env)}, opts...)...)
				require.NoError(t, err)
				return e
			}
			name := "rec" + tc.name
			prog := program(t, env(name, stacks.Dev, "kept"))
			first := engine()
			st, err := first.UpsertStack(ctx, prog)
			require.NoError(t, err)
			t.Cleanup(func() { destroyStack(t, first, name) })
			_, err = st.Up(ctx)
			require.NoError(t, err)

			store, err := statestore.Open(ctx, url, s3Env)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, store.Close()) })
			drv, err := statestore.OpenDriver(ctx, url, s3Env)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, drv.Close()) })
			host, err := os.Hostname()
			require.NoError(t, err)
			lockDir := ".pulumi/locks/organization/" + web.Project + "/" + name + "/"
			writeLock := func(key string, l statestore.Lock) {
				b, err := json.Marshal(l)
				require.NoError(t, err)
				require.NoError(t, drv.Write(ctx, lockDir+key, b))
			}
			writeLock("dead.json", statestore.Lock{PID: deadPID(t), Username: "ci", Hostname: host, Timestamp: time.Now().Add(-time.Minute)})
			writeLock("remote.json", statestore.Lock{PID: 4242, Username: "ci", Hostname: "another-runner", Timestamp: time.Now().Add(-time.Hour)})
			cp, err := store.ReadCheckpoint(ctx, web.Project, name)
			require.NoError(t, err)
			good := cp.Data
			// Killed mid-write: the backup is the previous (here: same) checkpoint, the checkpoint is cut short.
			require.NoError(t, store.WriteCheckpoint(ctx, statestore.Checkpoint{Key: cp.Key, Data: good[:len(good)/2]}))

			_, err = engine().UpsertStack(ctx, prog)
			require.Error(t, err)
			require.True(t, automation.IsStackLocked(err), "%v", err)
			var le *statestore.StackLockedError
			require.ErrorAs(t, err, &le)
			require.Len(t, le.Locks, 1, "only the other host's lock blocks")
			assert.Equal(t, "another-runner", le.Locks[0].Hostname)
			assert.Equal(t, "unknown", le.Locks[0].Liveness)
			assert.InDelta(t, time.Hour.Seconds(), le.Locks[0].Age.Seconds(), 120)
			assert.Contains(t, err.Error(), "--force-unlock")
			locks, err := store.Locks(ctx, web.Project, name)
			require.NoError(t, err)
			require.Len(t, locks, 1, "the dead owner's lock was removed, the other host's kept")
			assert.Equal(t, "another-runner", locks[0].Hostname)
			broken, err := store.ReadCheckpoint(ctx, web.Project, name)
			require.NoError(t, err)
			assert.Equal(t, good[:len(good)/2], broken.Data, "nothing else is touched while the stack is locked")

			forced := engine(automation.WithForceUnlock())
			st, err = forced.UpsertStack(ctx, prog)
			require.NoError(t, err)
			rec := st.LastRecovery()
			require.NotNil(t, rec)
			require.Len(t, rec.StaleLocks, 1, "%+v", rec)
			assert.True(t, rec.StaleLocks[0].Forced)
			assert.Equal(t, "another-runner", rec.StaleLocks[0].Hostname)
			assert.Contains(t, rec.RestoredCheckpoint, "/.pulumi/slipway/broken/"+web.Project+"/"+name+"/")
			restored, err := store.ReadCheckpoint(ctx, web.Project, name)
			require.NoError(t, err)
			assert.Equal(t, good, restored.Data, "the backup is the checkpoint again")
			locks, err = store.Locks(ctx, web.Project, name)
			require.NoError(t, err)
			assert.Empty(t, locks, "no lock is left behind, the recovery's own included")

			pre, err := st.Preview(ctx, optpreview.ExpectNoChanges())
			require.NoError(t, err, "the restored state matches the cluster")
			assert.Zero(t, pre.Changes())
			assert.Equal(t, "kept", greeting(t, "slipway-"+name))
		})
	}
}

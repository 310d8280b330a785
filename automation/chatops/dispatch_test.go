package chatops

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counting starts a server that answers every request with respond and
// counts them; hits receives after each request is answered.
func counting(t *testing.T, respond func(n int64, w http.ResponseWriter)) (*httptest.Server, *atomic.Int64, <-chan int64) {
	t.Helper()
	var n atomic.Int64
	hits := make(chan int64, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		i := n.Add(1)
		respond(i, w)
		hits <- i
	}))
	t.Cleanup(srv.Close)
	return srv, &n, hits
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func closeWithin(t *testing.T, d *Dispatcher, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.Close(ctx)
}

var ev = Event{Kind: RunFailed, Project: "shop", Environment: "dev", Operation: "up", Summary: "up of dev failed"}

// TestDispatcher_HangingServerBlocksNothing: Notify returns while the
// server still holds the request; each attempt times out; Close with a
// short context returns.
func TestDispatcher_HangingServerBlocksNothing(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close: the handler returns

	d := NewDispatcher(DispatcherOptions{Attempts: 2, Backoff: time.Millisecond, Timeout: 50 * time.Millisecond, Logger: quiet()},
		Webhook(srv.URL, []byte("s")))
	returned := make(chan struct{})
	go func() {
		_ = d.Notify(context.Background(), ev)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocked")
	}
	// The server got the request only after Notify returned, or still holds it:
	// either way Notify did not wait for a response (release is still open).
	<-arrived
	// The first attempt times out and the second comes: the per-attempt
	// timeout freed the worker.
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no second attempt: the hanging server held the worker")
	}
	// Close does not wait for the hanging server beyond its context.
	start := time.Now()
	err := closeWithin(t, d, 20*time.Millisecond)
	if err != nil {
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	}
	assert.Less(t, time.Since(start), 2*time.Second, "Close returned with its context")
}

// TestDispatcher_NotifyReturnsBeforeTheServerResponds: the test holds the
// server's answer until Notify has returned.
func TestDispatcher_NotifyReturnsBeforeTheServerResponds(t *testing.T) {
	answer := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-answer }))
	defer srv.Close()
	d := NewDispatcher(DispatcherOptions{Logger: quiet()}, Slack(srv.URL))
	require.NoError(t, d.Notify(context.Background(), ev)) // would deadlock if Notify waited for <-answer
	close(answer)
	require.NoError(t, closeWithin(t, d, 10*time.Second))
	assert.Equal(t, Stats{Attempts: 1, Delivered: 1}, d.Stats())
}

// TestDispatcher_500IsRetriedAttemptsTimes: a server that always fails
// gets exactly Attempts tries; the event counts as failed, not as an error
// of Notify.
func TestDispatcher_500IsRetriedAttemptsTimes(t *testing.T) {
	srv, n, _ := counting(t, func(_ int64, w http.ResponseWriter) { http.Error(w, "boom", 500) })
	d := NewDispatcher(DispatcherOptions{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet()},
		Teams(srv.URL+"/secret-path"))
	require.NoError(t, d.Notify(context.Background(), ev))
	require.NoError(t, closeWithin(t, d, 10*time.Second))
	assert.Equal(t, int64(3), n.Load())
	assert.Equal(t, Stats{Attempts: 3, Failed: 1}, d.Stats())
}

// TestDispatcher_429WithRetryAfterIsRetried: 429 then 200; the wait is the
// server's Retry-After capped at MaxBackoff.
func TestDispatcher_429WithRetryAfterIsRetried(t *testing.T) {
	srv, n, _ := counting(t, func(i int64, w http.ResponseWriter) {
		if i == 1 {
			w.Header().Set("Retry-After", "3600") // an hour: capped at MaxBackoff
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	d := NewDispatcher(DispatcherOptions{Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logger: quiet()}, Slack(srv.URL))
	require.NoError(t, d.Notify(context.Background(), ev))
	require.NoError(t, closeWithin(t, d, 10*time.Second), "Retry-After is capped, so the retry comes soon")
	assert.Equal(t, int64(2), n.Load())
	assert.Equal(t, Stats{Attempts: 2, Delivered: 1}, d.Stats())
}

// TestDispatcher_400IsNotRetried: a client error will not get better.
func TestDispatcher_400IsNotRetried(t *testing.T) {
	srv, n, _ := counting(t, func(_ int64, w http.ResponseWriter) { http.Error(w, "invalid_payload", 400) })
	d := NewDispatcher(DispatcherOptions{Backoff: time.Millisecond, Logger: quiet()}, Slack(srv.URL))
	require.NoError(t, d.Notify(context.Background(), ev))
	require.NoError(t, closeWithin(t, d, 10*time.Second))
	assert.Equal(t, int64(1), n.Load())
	assert.Equal(t, Stats{Attempts: 1, Failed: 1}, d.Stats())
}

// TestDispatcher_FullQueueDrops: with the worker held, events beyond the
// queue are dropped at once, and Notify still returns nil.
func TestDispatcher_FullQueueDrops(t *testing.T) {
	hold := make(chan struct{})
	started := make(chan struct{}, 1)
	n := NotifierFunc(func(ctx context.Context, e Event) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-hold
		return nil
	})
	d := NewDispatcher(DispatcherOptions{QueueSize: 2, Logger: quiet()}, n)
	require.NoError(t, d.Notify(context.Background(), ev))
	<-started // the worker holds the first event; the queue is empty
	for range 4 {
		require.NoError(t, d.Notify(context.Background(), ev))
	}
	assert.Equal(t, int64(2), d.Stats().Dropped, "2 queued, 2 dropped")
	close(hold)
	require.NoError(t, closeWithin(t, d, 10*time.Second))
	assert.Equal(t, Stats{Attempts: 3, Delivered: 3, Dropped: 2}, d.Stats())
	require.NoError(t, d.Notify(context.Background(), ev), "Notify after Close drops, never panics")
	assert.Equal(t, int64(3), d.Stats().Dropped)
}

// TestDelivery_ErrorsNeverCarryTheWebhookPath: the path of a webhook URL
// is its credential; errors and logs show the host only.
func TestDelivery_ErrorsNeverCarryTheWebhookPath(t *testing.T) {
	srv, _, _ := counting(t, func(_ int64, w http.ResponseWriter) { http.Error(w, "no_service", 404) })
	const secret = "T0001/B0001/supersecrettoken"
	err := Slack(srv.URL+"/services/"+secret).Notify(context.Background(), ev)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	var de *DeliveryError
	require.True(t, errors.As(err, &de))
	assert.Equal(t, 404, de.Status)
	assert.False(t, Retryable(err))

	// A transport error (nothing listens) is retryable and redacted too.
	closed := httptest.NewServer(http.NotFoundHandler())
	u := closed.URL
	closed.Close()
	err = Teams(u+"/webhookb2/"+secret).Notify(context.Background(), ev)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	assert.True(t, Retryable(err))

	// Logs of the Dispatcher, too.
	var logs strings.Builder
	d := NewDispatcher(DispatcherOptions{Attempts: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Slack(srv.URL+"/services/"+secret))
	require.NoError(t, d.Notify(context.Background(), ev))
	require.NoError(t, closeWithin(t, d, 10*time.Second))
	assert.Contains(t, logs.String(), "not delivered")
	assert.NotContains(t, logs.String(), secret)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 7*time.Second, retryAfter("7", now))
	assert.Equal(t, 30*time.Second, retryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now))
	assert.Zero(t, retryAfter("", now))
	assert.Zero(t, retryAfter("soon", now))
}

func TestBackoff_GrowsWithJitterUpToMax(t *testing.T) {
	d := &Dispatcher{o: DispatcherOptions{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for range 50 {
		b1, b3, b9 := d.backoff(1), d.backoff(3), d.backoff(9)
		assert.True(t, b1 >= 50*time.Millisecond && b1 <= 100*time.Millisecond, "%v", b1)
		assert.True(t, b3 >= 200*time.Millisecond && b3 <= 400*time.Millisecond, "%v", b3)
		assert.True(t, b9 >= 500*time.Millisecond && b9 <= time.Second, "%v", b9)
	}
}

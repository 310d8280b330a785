package chatops

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWebhook_DeliveriesCarryASignedIDSoReceiversRefuseReplays: every
// event's delivery carries an ID, the same for each retry and another for
// the next event; the signature covers it (an altered ID does not
// verify); a receiver with Replays accepts a delivery once and refuses it
// replayed within the window.
func TestWebhook_DeliveriesCarryASignedIDSoReceiversRefuseReplays(t *testing.T) {
	secret := []byte("webhook-signing-secret-0123")
	var calls atomic.Int32
	got := make(chan received, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), b}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails: a retry follows
		}
	}))
	defer srv.Close()
	d := NewDispatcher(DispatcherOptions{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet()},
		Webhook(srv.URL+"/hook", secret))
	ctx := context.Background()
	require.NoError(t, d.Notify(ctx, Event{Kind: RunSucceeded, Project: "shop", Environment: "prod", Summary: "one"}))
	require.NoError(t, d.Notify(ctx, Event{Kind: RunSucceeded, Project: "shop", Environment: "prod", Summary: "two"}))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d.Close(cctx))
	close(got)
	var all []received
	for r := range got {
		all = append(all, r)
	}
	require.Len(t, all, 3, "a failed attempt, its retry, and the second event")
	first, retry, second := all[0], all[1], all[2]
	id := first.header.Get(WebhookDeliveryHeader)
	assert.Regexp(t, `^[0-9a-f]{32}$`, id)
	assert.Equal(t, id, retry.header.Get(WebhookDeliveryHeader), "a retry keeps the delivery's ID")
	assert.NotEqual(t, id, second.header.Get(WebhookDeliveryHeader), "another event, another ID")
	assert.NotContains(t, string(first.body), id, "the ID travels in the header, under the signature")

	now := time.Now()
	for _, r := range all {
		require.NoError(t, VerifyWebhook(r.header, r.body, secret, now, 0))
	}
	forged := retry.header.Clone()
	forged.Set(WebhookDeliveryHeader, NewDeliveryID())
	assert.ErrorIs(t, VerifyWebhook(forged, retry.body, secret, now, 0), ErrBadSignature, "the ID is signed")
	noID := retry.header.Clone()
	noID.Del(WebhookDeliveryHeader)
	assert.ErrorIs(t, VerifyWebhook(noID, retry.body, secret, now, 0), ErrMissingSignature)

	rp := NewReplays(0)
	require.NoError(t, rp.Verify(retry.header, retry.body, secret, now), "the first receipt is accepted")
	assert.ErrorIs(t, rp.Verify(retry.header, retry.body, secret, now.Add(time.Second)), ErrReplayed, "the same delivery again is refused")
	assert.ErrorIs(t, rp.Verify(first.header, first.body, secret, now.Add(time.Second)), ErrReplayed, "a retry of an accepted delivery is recognised")
	require.NoError(t, rp.Verify(second.header, second.body, secret, now.Add(time.Second)), "another delivery is accepted")
	assert.ErrorIs(t, rp.Verify(forged, retry.body, secret, now), ErrBadSignature, "a new ID on an old body does not pass")
}

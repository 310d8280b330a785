package chatops

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Headers of a generic webhook delivery.
const (
	// WebhookTimestampHeader carries the unix seconds the body was signed at.
	WebhookTimestampHeader = "X-Slipway-Timestamp"
	// WebhookSignatureHeader carries "v2=" + hex HMAC-SHA256(secret,
	// timestamp + "." + delivery ID + "." + body).
	WebhookSignatureHeader = "X-Slipway-Signature"
	// WebhookDeliveryHeader carries the delivery's ID, unique per event and
	// the same for each retry of it; the signature covers it, so a
	// receiver that remembers the IDs it accepted (Replays) refuses a
	// replayed delivery.
	WebhookDeliveryHeader = "X-Slipway-Delivery"
	// WebhookEventHeader carries the event's Kind.
	WebhookEventHeader = "X-Slipway-Event"
)

// Webhook returns a Notifier that posts each Event as JSON to url, signed
// with secret (see WebhookSignatureHeader); receivers check it with
// VerifyWebhook. An empty secret sends unsigned requests.
func Webhook(url string, secret []byte, opts ...Option) Notifier {
	return &webhookNotifier{ch: newChannel("webhook", url, opts), secret: secret}
}

type webhookNotifier struct {
	ch     *channel
	secret []byte
}

// String names the channel without its path.
func (w *webhookNotifier) String() string { return w.ch.String() }

// Notify posts one signed event (a single attempt).
func (w *webhookNotifier) Notify(ctx context.Context, e Event) error {
	e.Details = details(e)
	b, err := marshal(e)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set(WebhookEventHeader, string(e.Kind))
	id := e.Delivery
	if id == "" {
		id = NewDeliveryID()
	}
	if len(w.secret) > 0 {
		for k, v := range SignDelivery(id, b, w.secret, w.ch.now()) {
			h[k] = v
		}
	} else {
		h.Set(WebhookDeliveryHeader, id)
	}
	return w.ch.post(ctx, b, h)
}

// NewDeliveryID returns a random delivery ID (32 hex digits).
func NewDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SignWebhook returns the headers of a new delivery of body at t: a fresh
// delivery ID and the signature (see SignDelivery).
func SignWebhook(body, secret []byte, t time.Time) http.Header {
	return SignDelivery(NewDeliveryID(), body, secret, t)
}

// SignDelivery returns the delivery, timestamp and signature headers of
// the delivery id of body at t.
func SignDelivery(id string, body, secret []byte, t time.Time) http.Header {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + id + "."))
	m.Write(body)
	h := http.Header{}
	h.Set(WebhookDeliveryHeader, id)
	h.Set(WebhookTimestampHeader, ts)
	h.Set(WebhookSignatureHeader, "v2="+hex.EncodeToString(m.Sum(nil)))
	return h
}

// VerifyWebhook checks a delivery of Webhook: the signature must match the
// delivery ID and the raw body (constant-time comparison) and the
// timestamp be within window of now in either direction (DefaultWindow
// when window <= 0). It does not remember IDs: use Replays to refuse a
// delivery seen before. Errors wrap ErrNoSecret, ErrMissingSignature,
// ErrExpired or ErrBadSignature.
func VerifyWebhook(header http.Header, body, secret []byte, now time.Time, window time.Duration) error {
	id := header.Get(WebhookDeliveryHeader)
	if id == "" && len(secret) > 0 {
		return ErrMissingSignature
	}
	return verify(header.Get(WebhookTimestampHeader), header.Get(WebhookSignatureHeader), "v2=", func(ts string) []byte {
		return []byte(ts + "." + id + "." + string(body))
	}, secret, now, window)
}

// ErrReplayed: a delivery with this ID was accepted before.
var ErrReplayed = errors.New("chatops: the delivery was received before (a replay or a retry of a delivery already handled)")

// Replays verifies deliveries and remembers the IDs it accepted, for as
// long as their timestamps could still pass the window, so that a
// delivery replayed within the window is refused. One Replays serves one
// receiver; it is safe for concurrent use.
type Replays struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]time.Time
}

// NewReplays returns a Replays for the window (DefaultWindow when <= 0).
func NewReplays(window time.Duration) *Replays {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Replays{window: window, seen: map[string]time.Time{}}
}

// Verify checks the delivery like VerifyWebhook, then refuses an ID it
// accepted before (ErrReplayed) and otherwise remembers it.
func (r *Replays) Verify(header http.Header, body, secret []byte, now time.Time) error {
	if err := VerifyWebhook(header, body, secret, now, r.window); err != nil {
		return err
	}
	id := header.Get(WebhookDeliveryHeader)
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, at := range r.seen {
		if now.Sub(at) > 2*r.window {
			delete(r.seen, k)
		}
	}
	if _, dup := r.seen[id]; dup {
		return fmt.Errorf("%w: %s", ErrReplayed, id)
	}
	r.seen[id] = now
	return nil
}

package chatops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Headers of a generic webhook delivery.
const (
	// WebhookTimestampHeader carries the unix seconds the body was signed at.
	WebhookTimestampHeader = "X-Slipway-Timestamp"
	// WebhookSignatureHeader carries "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body).
	WebhookSignatureHeader = "X-Slipway-Signature"
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
	if len(w.secret) > 0 {
		for k, v := range SignWebhook(b, w.secret, w.ch.now()) {
			h[k] = v
		}
	}
	return w.ch.post(ctx, b, h)
}

// SignWebhook returns the signature headers of body at t.
func SignWebhook(body, secret []byte, t time.Time) http.Header {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	h := http.Header{}
	h.Set(WebhookTimestampHeader, ts)
	h.Set(WebhookSignatureHeader, "v1="+hex.EncodeToString(m.Sum(nil)))
	return h
}

// VerifyWebhook checks a delivery of Webhook: the signature must match the
// raw body (constant-time comparison) and the timestamp be within window
// of now in either direction (DefaultWindow when window <= 0). Errors wrap
// ErrNoSecret, ErrMissingSignature, ErrExpired or ErrBadSignature.
func VerifyWebhook(header http.Header, body, secret []byte, now time.Time, window time.Duration) error {
	return verify(header.Get(WebhookTimestampHeader), header.Get(WebhookSignatureHeader), "v1=", func(ts string) []byte {
		return []byte(ts + "." + string(body))
	}, secret, now, window)
}

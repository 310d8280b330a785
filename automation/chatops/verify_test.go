package chatops

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestVerify covers both schemes: Slack's v0 and Slipway's v1 webhook.
func TestVerify(t *testing.T) {
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	body := []byte("payload=%7B%22type%22%3A%22block_actions%22%7D")
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	schemes := map[string]struct {
		sign   func(body, secret []byte, t time.Time) http.Header
		verify func(h http.Header, body, secret []byte, now time.Time, window time.Duration) error
		sigHdr string
	}{
		"slack":   {SignSlack, VerifySlack, SlackSignatureHeader},
		"webhook": {SignWebhook, VerifyWebhook, WebhookSignatureHeader},
	}
	for name, s := range schemes {
		t.Run(name, func(t *testing.T) {
			good := s.sign(body, secret, now.Add(-time.Minute))
			assert.NoError(t, s.verify(good, body, secret, now, 0), "good")

			for hdr := range good {
				h := good.Clone()
				h.Del(hdr)
				assert.ErrorIs(t, s.verify(h, body, secret, now, 0), ErrMissingSignature, "without %s", hdr)
			}
			assert.ErrorIs(t, s.verify(good, body, nil, now, 0), ErrNoSecret)
			assert.ErrorIs(t, s.verify(good, body, []byte("other secret"), now, 0), ErrBadSignature, "wrong secret")
			assert.ErrorIs(t, s.verify(good, append([]byte(nil), append(body, '1')...), secret, now, 0), ErrBadSignature, "tampered body")

			h := good.Clone()
			h.Set(s.sigHdr, h.Get(s.sigHdr)[:3]+"zz"+h.Get(s.sigHdr)[5:])
			assert.ErrorIs(t, s.verify(h, body, secret, now, 0), ErrBadSignature, "not hex")
			h.Set(s.sigHdr, "v9="+good.Get(s.sigHdr)[3:])
			assert.ErrorIs(t, s.verify(h, body, secret, now, 0), ErrBadSignature, "wrong version")

			old := s.sign(body, secret, now.Add(-6*time.Minute))
			assert.ErrorIs(t, s.verify(old, body, secret, now, 0), ErrExpired, "replayed after the default 5 minutes")
			assert.NoError(t, s.verify(old, body, secret, now, 10*time.Minute), "within a wider window")
			future := s.sign(body, secret, now.Add(6*time.Minute))
			assert.ErrorIs(t, s.verify(future, body, secret, now, 0), ErrExpired, "timestamp beyond the window ahead")
		})
	}
}

package chatops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/mask"
)

// Option configures a Slack, Teams or Webhook notifier.
type Option func(*channel)

// WithClient sets the HTTP client (default: a client without redirects
// and with a 10 s timeout; the Dispatcher's per-attempt timeout is usually
// shorter).
func WithClient(c *http.Client) Option { return func(ch *channel) { ch.client = c } }

// WithUserAgent sets the User-Agent header (default "slipway").
func WithUserAgent(ua string) Option { return func(ch *channel) { ch.userAgent = ua } }

// WithClock sets the clock a Webhook signs with (default time.Now).
func WithClock(now func() time.Time) Option { return func(ch *channel) { ch.now = now } }

// channel is what the three notifiers share: one URL to POST a JSON body to.
type channel struct {
	name      string
	url       string
	client    *http.Client
	userAgent string
	now       func() time.Time
}

func newChannel(name, rawURL string, opts []Option) *channel {
	ch := &channel{name: name, url: rawURL, userAgent: "slipway", now: time.Now, client: &http.Client{
		Timeout: 10 * time.Second,
		// A webhook does not redirect; following one could carry the body
		// (and a signature) elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for _, o := range opts {
		if o != nil {
			o(ch)
		}
	}
	return ch
}

// String names the channel and its host, never the URL's path (a Slack or
// Teams webhook URL is a secret: its path is the credential).
func (ch *channel) String() string { return ch.name + " " + mask.Origin(ch.url) }

// DeliveryError is a failed delivery attempt. It names the channel and the
// webhook's host only.
// Get it with errors.As (a *DeliveryError).
type DeliveryError struct {
	// Channel is "slack", "teams" or "webhook".
	Channel string
	// Target is the webhook URL's scheme and host (see mask.Origin).
	Target string
	// Status is the HTTP status, 0 when no response came.
	Status int
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Err is the transport error (no response) or the response's first bytes.
	Err error
}

// Error implements error.
func (e *DeliveryError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("chatops: %s %s: %v", e.Channel, e.Target, e.Err)
	}
	return fmt.Sprintf("chatops: %s %s: HTTP %d: %v", e.Channel, e.Target, e.Status, e.Err)
}

// Unwrap returns the underlying error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Retryable reports whether another attempt may succeed: network errors,
// 408, 429 and 5xx are retried; other 4xx (a wrong URL, a malformed
// message, a revoked webhook) are not.
func Retryable(err error) bool {
	var de *DeliveryError
	if !errors.As(err, &de) {
		return err != nil && !errors.Is(err, context.Canceled)
	}
	switch {
	case de.Status == 0:
		return true
	case de.Status == http.StatusTooManyRequests, de.Status == http.StatusRequestTimeout:
		return true
	case de.Status >= 500:
		return true
	}
	return false
}

// post sends one JSON body, with extra headers.
func (ch *channel) post(ctx context.Context, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.url, bytes.NewReader(body))
	if err != nil {
		// The parse error quotes the URL: say only that it is malformed.
		return &DeliveryError{Channel: ch.name, Target: mask.Origin(ch.url), Err: errors.New("the webhook URL is malformed")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ch.userAgent)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ch.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return &DeliveryError{Channel: ch.name, Target: mask.Origin(ch.url), Err: err}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := strings.TrimSpace(string(snippet))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &DeliveryError{Channel: ch.name, Target: mask.Origin(ch.url), Status: resp.StatusCode,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: errors.New(msg)}
}

// marshal encodes a payload as JSON without HTML escaping (chat texts
// keep their < > &).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// title is the headline of an event.
func title(e Event) string {
	where := e.Project + "/" + e.Environment
	switch e.Kind {
	case RunSucceeded:
		return "✅ " + e.Operation + " succeeded: " + where
	case RunFailed:
		return "❌ " + e.Operation + " failed: " + where
	case PolicyBlocked:
		return "⛔ Policy blocked " + e.Operation + ": " + where
	case DriftDetected:
		return "⚠️ Drift detected: " + where
	case RollbackDone:
		return "↩️ Rolled back: " + where
	case RolloutStep:
		return "🚦 Rollout: " + where
	case RolloutAborted:
		return "🛑 Rollout aborted: " + where
	case ApprovalRequested:
		stage := e.Environment
		if e.Approval != nil && e.Approval.Stage != "" {
			stage = e.Approval.Stage
		}
		return "🔐 Approval requested: " + e.Project + "/" + stage
	}
	return string(e.Kind) + ": " + where
}

// details returns at most MaxDetails lines.
func details(e Event) []string {
	if len(e.Details) <= MaxDetails {
		return e.Details
	}
	out := append([]string(nil), e.Details[:MaxDetails-1]...)
	return append(out, fmt.Sprintf("… and %d more", len(e.Details)-(MaxDetails-1)))
}

// truncate cuts s to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
